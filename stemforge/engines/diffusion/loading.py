"""Loading a diffusers pipeline from a checkpoint setting, once per replica: a folder, or a model
id looked up in the local Hugging Face cache only (never downloaded at start-up)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stemforge.engines.checkpoints import CheckpointKind, how_to_provide, resolve_checkpoint
from stemforge.errors import ConfigurationError

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class LoadedPipeline:
    pipeline: Any  # a diffusers pipeline
    name: str  # the checkpoint setting as given
    path: Path | None  # the folder it was loaded from (None: built in memory)
    device: torch.device
    dtype: torch.dtype  # the weights' (bar the components kept in float32)


def load_pipeline(
    name: str, kind: CheckpointKind, pipeline_class: str, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Path]:
    """``(pipeline, folder)``; refuses a folder holding another pipeline class, by name."""
    import diffusers

    path = resolve_checkpoint(name, kind)
    try:
        index = json.loads((path / "model_index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"{kind.setting}={name!r}: unreadable model_index.json in {path}: {exc}"
        ) from exc
    if index.get("_class_name") != pipeline_class:
        raise ConfigurationError(
            f"{kind.setting}={name!r} ({path}) is a {index.get('_class_name')!r} pipeline; this engine "
            f"loads {pipeline_class} checkpoints"
        )
    try:
        pipeline = getattr(diffusers, pipeline_class).from_pretrained(
            path, dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigurationError(
            f"{kind.setting}={name!r}: could not load the pipeline in {path}: {exc}. "
            + how_to_provide(name, kind)
        ) from exc
    return pipeline, path


def prepare(
    pipeline: Any,
    name: str,
    path: Path | None,
    device: torch.device,
    dtype: torch.dtype,
    keep_float32: tuple[str, ...] = (),
) -> LoadedPipeline:
    """Place a pipeline for inference: weights in ``dtype`` on ``device``, except the components
    in ``keep_float32`` (a decoder whose fp16 output overflows to NaN or noise)."""
    pipeline.to(device=device, dtype=dtype)
    for part in keep_float32:
        getattr(pipeline, part).to(dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return LoadedPipeline(pipeline=pipeline, name=name, path=path, device=device, dtype=dtype)
