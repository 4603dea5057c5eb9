"""Shared test set-up. Azurite fixtures live in tests/support/azurite.py."""

import os
import tempfile

pytest_plugins = ["tests.support.azurite"]

# Ray workers inherit this: a quiet, predictable environment for every test process.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# librosa's numba functions cache their compiled code; tests kill replicas and nodes mid-work,
# and a cache file left half-written crashes (segfaults) whichever process loads it next. This
# session's processes share a cache of their own, never the virtual environment's.
os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="stemforge-numba-"))
