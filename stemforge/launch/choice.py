"""Which serve config ``make run`` starts when none is given: the mode (MOCK_GENERATION) and the
machine (GPUs or not) decide."""

from dataclasses import dataclass
from pathlib import Path

from stemforge.settings import REPO_ROOT

CPU = REPO_ROOT / "configs" / "serve.cpu.yaml"
CPU_MUSICGEN = REPO_ROOT / "configs" / "serve.cpu-musicgen.yaml"
PRODUCTION = REPO_ROOT / "serve_config.yaml"
GPU = REPO_ROOT / "configs" / "serve.gpu.yaml"


@dataclass(frozen=True)
class Choice:
    path: Path
    reason: str


def choose_config(explicit: str | None, mock_generation: bool, gpus: int) -> Choice:
    if explicit:
        return Choice(Path(explicit), "given explicitly (argument or SERVE_CONFIG)")
    if mock_generation:
        # The procedural engine needs no GPU, and serve_config.yaml serves the models: even a GPU
        # machine starts the CPU graph in mock mode.
        return Choice(CPU, "MOCK_GENERATION=true: the procedural engine only, no model, no GPU needed")
    if gpus > 0:
        return Choice(
            GPU, f"MOCK_GENERATION=false and {gpus} GPU(s) here: the production graph's routed engines"
        )
    return Choice(CPU_MUSICGEN, "MOCK_GENERATION=false and no GPU here: MusicGen on the CPU")
