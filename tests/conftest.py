"""Shared test set-up. Azurite fixtures live in tests/support/azurite.py."""

import os

pytest_plugins = ["tests.support.azurite"]

# Ray workers inherit this: a quiet, predictable environment for every test process.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
