"""A job's Server-Sent Events (``GET /generate/{id}/events``) from successive looks at its
status: what changed since the last look, as named events. Pure: the route does the looking.

Events: ``stage`` (``{"stage"}``) when the stage changes; ``progress`` (the job's fraction, eta
and per-stem state and fraction) when it moves; ``stem`` (the stem's callback entry, with its
URL) once per stored stem; last, ``callback``: the callback payload itself, after which the
stream ends.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobEvents:
    stage: str | None = None
    progress: dict[str, Any] | None = None
    stems: set[str] = field(default_factory=set)
    done: bool = False

    def update(self, status: dict[str, Any]) -> list[tuple[str, Any]]:
        """The events ``status`` (``GET /generate/{id}``'s body) brings, in order."""
        events: list[tuple[str, Any]] = []
        if self.done:
            return events
        stage = status.get("stage")
        if stage != self.stage:
            self.stage = stage
            events.append(("stage", {"stage": stage}))
        progress = status.get("progress")
        if progress is not None and progress != self.progress:
            self.progress = progress
            events.append(("progress", progress))
        for stem in status.get("generated_stems") or []:
            name = stem.get("stem_type")
            if name not in self.stems:
                self.stems.add(name)
                events.append(("stem", stem))
        if status.get("status") != "processing":
            self.done = True
            payload = {
                key: value
                for key, value in status.items()
                if key not in ("stage", "attempt", "target_stems", "progress", "callback")
            }
            events.append(("callback", payload))
        return events
