"""What the ingress hands down the graph for one accepted request."""

from dataclasses import dataclass
from typing import Any

from deployments.music.spec import MusicSpec


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
