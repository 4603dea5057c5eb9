"""Where a torch engine computes and with how many threads. Imports torch: only engines that are
being built import this module."""

import logging
import os

import torch

logger = logging.getLogger(__name__)


def pick_device(use_gpu: bool, engine: str = "the engine") -> torch.device:
    """The GPU when asked for and visible; Ray may assign a logical GPU on a machine without CUDA,
    in which case the engine runs on CPU rather than failing."""
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    if use_gpu:
        logger.warning("USE_GPU is set but CUDA is not available here; %s runs on CPU", engine)
    return torch.device("cpu")


def apply_threads(num_threads: int | None) -> None:
    if num_threads is not None and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
    if "OMP_WAIT_POLICY" not in os.environ:
        # Spinning OpenMP workers starve everything else on a shared CPU; the Makefile and Ray
        # runtime_env set PASSIVE, this only warns when they did not.
        logger.info("OMP_WAIT_POLICY is not set; PASSIVE is recommended on shared CPUs")
