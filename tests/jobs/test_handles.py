"""The lifecycle's ports over Ray handles: what a lost replica becomes."""

import asyncio
from typing import Any

import pytest
from ray.exceptions import ActorUnavailableError, ObjectLostError, RayActorError

from stemforge.errors import ResultsLost
from stemforge.jobs.handles import UploaderHandle


class _Raising:
    """A deployment handle whose ``store.remote`` call fails the way Ray fails it."""

    def __init__(self, error: BaseException) -> None:
        self.store = self
        self._error = error

    def remote(self, *args: Any) -> Any:
        async def fail() -> Any:
            raise self._error

        return fail()


@pytest.mark.parametrize(
    "error",
    [ObjectLostError.__new__(ObjectLostError), RayActorError(), ActorUnavailableError("uploader gone", None)],
    ids=["results-lost", "uploader-died", "uploader-unreachable"],
)
def test_losing_the_results_or_the_uploader_mid_store_means_generating_again(error: BaseException) -> None:
    uploader = UploaderHandle(_Raising(error))  # type: ignore[arg-type]
    with pytest.raises(ResultsLost):
        asyncio.run(uploader.store(None, []))  # type: ignore[arg-type]
