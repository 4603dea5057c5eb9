"""Which serve config the launcher starts when none is given."""

import pytest

from stemforge.launch.choice import CPU, CPU_MUSICGEN, GPU, PRODUCTION, choose_config


@pytest.mark.parametrize(
    ("mock", "gpus", "expected"),
    [
        (True, 0, CPU),
        (True, 2, CPU),  # the procedural engine needs no GPU, even where there are some
        (False, 0, CPU_MUSICGEN),
        (False, 1, GPU),
        (False, 8, GPU),
    ],
)
def test_the_mode_and_the_machine_choose_the_config(mock: bool, gpus: int, expected: object) -> None:
    choice = choose_config(None, mock_generation=mock, gpus=gpus)
    assert choice.path == expected
    assert f"MOCK_GENERATION={str(mock).lower()}" in choice.reason


@pytest.mark.parametrize(("mock", "gpus"), [(True, 0), (False, 0), (False, 4)])
def test_an_explicit_config_always_wins(mock: bool, gpus: int) -> None:
    choice = choose_config("my/serve.yaml", mock_generation=mock, gpus=gpus)
    assert str(choice.path) == "my/serve.yaml"
    assert "explicitly" in choice.reason


def test_the_chosen_files_exist() -> None:
    assert CPU.is_file() and CPU_MUSICGEN.is_file() and GPU.is_file() and PRODUCTION.is_file()
