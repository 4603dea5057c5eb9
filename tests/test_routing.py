import pytest

from stemforge.errors import ConfigurationError
from stemforge.music.spec import STEM_TYPES
from stemforge.routing import RoutingTable
from stemforge.settings import Settings


def test_the_shipped_table_routes_every_stem_in_both_modes() -> None:
    table = RoutingTable.load(Settings().stem_routing_file)

    for mode in ("mock", "ai"):
        assert set(table.stems[mode]) == set(STEM_TYPES)
    assert table.engines("mock") == ["procedural"]


def test_stems_are_grouped_by_engine_in_request_order() -> None:
    table = RoutingTable.from_mapping(
        {"mock": {"default": "procedural"}, "ai": {"default": "musicgen", "stems": {"drums": "procedural"}}}
    )

    routes = table.route("ai", ["vocals", "drums", "bass"])

    assert routes == {"musicgen": ("vocals", "bass"), "procedural": ("drums",)}
    assert table.engines("ai") == ["musicgen", "procedural"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mock": {"default": "procedural"}}, "'ai' needs a 'default'"),
        ({"mock": {"default": "nope"}, "ai": {"default": "procedural"}}, "unknown engine 'nope'"),
        (
            {
                "mock": {"default": "procedural"},
                "ai": {"default": "procedural", "stems": {"kazoo": "procedural"}},
            },
            "kazoo",
        ),
    ],
)
def test_a_broken_table_fails_with_a_clear_message(raw: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RoutingTable.from_mapping(raw)
