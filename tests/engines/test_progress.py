"""ProgressTracker: fractions that only rise, a version that moves with them, an ETA from the
rate so far (fake clock)."""

import pytest

from stemforge.engines.progress import ProgressTracker


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fractions_rise_clamped_and_unknown_stems_are_ignored() -> None:
    tracker = ProgressTracker(["drums", "bass"], clock=_Clock())
    tracker("drums", 0.5)
    tracker("drums", 0.25)  # never backwards
    tracker("bass", 7.0)
    tracker("vocals", 0.9)
    assert tracker.snapshot().fractions == {"drums": 0.5, "bass": 1.0}


def test_the_version_moves_only_when_a_fraction_rose() -> None:
    tracker = ProgressTracker(["drums"], clock=_Clock())
    start = tracker.version
    tracker("drums", 0.0)
    assert tracker.version == start
    tracker("drums", 0.1)
    assert tracker.version == start + 1


@pytest.mark.parametrize(("elapsed", "done", "eta"), [(10.0, 0.5, 10.0), (3.0, 0.25, 9.0), (1.0, 0.01, None)])
def test_the_eta_extrapolates_the_rate_since_the_first_report(
    elapsed: float, done: float, eta: float
) -> None:
    clock = _Clock()
    tracker = ProgressTracker(["drums"], clock=clock)
    clock.now += 50  # queueing before the engine starts does not count
    tracker("drums", 0.0)
    clock.now += elapsed
    tracker("drums", done)
    assert tracker.snapshot().eta_seconds == eta


def test_no_eta_before_any_report_or_once_done() -> None:
    clock = _Clock()
    tracker = ProgressTracker(["drums"], clock=clock)
    assert tracker.snapshot().eta_seconds is None
    tracker("drums", 1.0)
    assert tracker.snapshot().eta_seconds is None
