"""The request context the analysis measures against: bars as the procedural engine plays them."""

import pytest

from stemforge.quality.report import RequestContext


@pytest.mark.parametrize(
    ("signature", "beats", "bar_seconds"),
    [
        (None, 4, 2.0),
        ("4/4", 4, 2.0),
        ("3/4", 3, 1.5),
        ("6/8", 2, 1.0),
        ("12/8", 4, 2.0),
        ("nonsense", 4, 2.0),
    ],
)
def test_a_bar_has_the_beats_of_its_metre_at_the_request_s_tempo(
    signature: str | None, beats: int, bar_seconds: float
) -> None:
    # At 120 BPM a beat is 0.5 s; in 6/8 and 12/8 the tempo counts dotted quarters.
    context = RequestContext.from_parameters({"time_signature": signature}, bpm=120.0, sample_rate=44_100)
    assert context.beats_per_bar == beats
    assert context.bar_seconds == pytest.approx(bar_seconds)
