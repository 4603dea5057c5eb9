"""What the ingress hands down the graph for one accepted request."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from stemforge.music.spec import MusicSpec


@dataclass(frozen=True)
class JobTicket:
    generation_request_id: str
    audio_file_id: str
    callback_url: str | None
    accepted_at: float  # wall-clock seconds (time.time()): replicas may live on other nodes
    stems: tuple[str, ...]  # in the order the client asked for them
    routes: dict[str, tuple[str, ...]]  # engine name -> the stems it renders
    spec: MusicSpec
    parameters: dict[str, Any]  # the request's parameters as applied (defaults and seed resolved)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # one per accepted job
    attempt: int = 1  # 1, then 2, ... when a crashed job is resumed

    @property
    def webhook_id(self) -> str:
        """Standard Webhooks message id: the same for every delivery attempt of one outcome. A
        resumed run may reach another outcome (its first could not be recorded), so each run
        attempt has its own id: a receiver de-duplicating by it never drops the newer outcome."""
        return f"msg_{self.run_id}" if self.attempt == 1 else f"msg_{self.run_id}_{self.attempt}"
