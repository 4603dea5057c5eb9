"""Watching ``serve run`` until the application is RUNNING, or saying why it will not be.

``serve run CONFIG`` (ray 2.60) submits the config and then sleeps for ever, whatever happens to
the deployments: a replica whose constructor fails leaves the application DEPLOY_FAILED, one that
cannot be placed stays pending, and the command just keeps running. ``judge`` reads Serve's own
status (``serve.status()``) and decides; ``Watchdog`` polls it from a thread of the process that
runs ``serve run``, which is the Ray driver, so no dashboard and no second connection are needed.
"""

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Serve's message for replicas still waiting for resources after RAY_SERVE_SLOW_STARTUP_WARNING_S
# (30 s): on one machine nothing will free them.
UNSCHEDULED = "to be scheduled"
MESSAGE_LINES = 25  # Serve's messages carry whole tracebacks; the end says what went wrong
# After a failure ``serve run`` deletes the application (serve.shutdown) and exits; if that hangs,
# leave anyway rather than hang the caller.
SHUTDOWN_GRACE_S = 60.0


@dataclass(frozen=True)
class DeploymentState:
    status: str
    message: str


@dataclass(frozen=True)
class AppState:
    status: str
    message: str
    deployments: Mapping[str, DeploymentState]


@dataclass(frozen=True)
class Verdict:
    running: bool
    message: str
    summary: str = ""  # one line for the end of the output: the failing deployment and its error

    @property
    def headline(self) -> str:
        return self.summary or self.message.splitlines()[0]


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _value(status: Any) -> str:
    return str(getattr(status, "value", status))


def app_state(serve_status: Any, app_name: str) -> AppState | None:
    """The application's state from a ``serve.status()`` result; None until it is submitted."""
    app = serve_status.applications.get(app_name)
    if app is None:
        return None
    return AppState(
        status=_value(app.status),
        message=app.message or "",
        deployments={
            name: DeploymentState(_value(d.status), d.message or "") for name, d in app.deployments.items()
        },
    )


def _tail(message: str) -> str:
    lines = message.strip().splitlines()
    kept = lines[-MESSAGE_LINES:]
    return "\n".join((["    ..."] if len(lines) > len(kept) else []) + [f"    {line}" for line in kept])


def judge(state: AppState | None, app_name: str, elapsed: float, timeout: float) -> Verdict | None:
    """RUNNING, failed, or None to keep waiting."""
    if state is not None and state.status == "RUNNING":
        return Verdict(True, f"application {app_name!r} is RUNNING after {elapsed:.0f} s")
    if state is not None and state.status == "DEPLOY_FAILED":
        failed = {n: d for n, d in state.deployments.items() if d.status in ("DEPLOY_FAILED", "UNHEALTHY")}
        lines = [f"application {app_name!r} failed to deploy (DEPLOY_FAILED) after {elapsed:.0f} s."]
        lines += [
            f"  deployment {n} is {d.status}; Serve says:\n{_tail(d.message)}" for n, d in failed.items()
        ]
        if not failed:
            lines.append(f"  Serve says:\n{_tail(state.message)}")
        summary = "; ".join(f"{n} is {d.status}: {_last_line(d.message)}" for n, d in failed.items())
        return Verdict(False, "\n".join(lines), summary or f"{app_name}: {_last_line(state.message)}")
    for name, deployment in (state.deployments if state else {}).items():
        if UNSCHEDULED in deployment.message:
            return Verdict(
                False,
                f"deployment {name} is stuck unscheduled after {elapsed:.0f} s (its resources are not "
                f"free on this cluster); Serve says:\n{_tail(deployment.message)}",
                f"{name} is stuck unscheduled (not enough free resources)",
            )
    if elapsed < timeout:
        return None
    if state is None:
        return Verdict(
            False,
            f"application {app_name!r} was not even submitted after {timeout:g} s "
            "(STARTUP_TIMEOUT_SECONDS): Ray or Serve did not start",
        )
    waiting = [
        f"  deployment {n} is {d.status}" + (f"; Serve says:\n{_tail(d.message)}" if d.message else "")
        for n, d in state.deployments.items()
        if d.status != "HEALTHY"
    ]
    return Verdict(
        False,
        "\n".join(
            [
                f"application {app_name!r} is not RUNNING after {timeout:g} s (STARTUP_TIMEOUT_SECONDS); "
                f"it is {state.status}.",
                *waiting,
            ]
        ),
    )


def _serve_state(app_name: str) -> AppState | None:
    import ray
    from ray import serve

    if not ray.is_initialized():
        return None
    try:
        return app_state(serve.status(), app_name)
    except Exception:  # the controller is starting, or going away: ask again
        return None


def _ray_initialized() -> bool:
    import ray

    return bool(ray.is_initialized())


def _interrupt_main() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class Watchdog(threading.Thread):
    """Polls the application's state; on RUNNING prints ``ready_hint`` and stops watching; on
    failure records the verdict and interrupts the main thread, so ``serve run`` deletes the
    application the way it does on Ctrl-C."""

    def __init__(
        self,
        app_name: str,
        timeout: float,
        ready_hint: str,
        poll_s: float = 2.0,
        state: Callable[[str], AppState | None] = _serve_state,
        ray_initialized: Callable[[], bool] = _ray_initialized,
        interrupt: Callable[[], None] = _interrupt_main,
    ) -> None:
        super().__init__(name="stemforge-launch-watchdog", daemon=True)
        self.app_name, self.timeout, self.ready_hint, self.poll_s = app_name, timeout, ready_hint, poll_s
        self._state, self._ray_initialized, self._interrupt = state, ray_initialized, interrupt
        self._done = threading.Event()  # not _stop: threading.Thread has a method of that name
        self.failure: Verdict | None = None

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        started = time.monotonic()
        while not self._done.wait(self.poll_s):
            verdict = judge(
                self._state(self.app_name), self.app_name, time.monotonic() - started, self.timeout
            )
            if verdict is None:
                continue
            if verdict.running:
                say(f"{verdict.message}; {self.ready_hint}")
                return
            self.failure = verdict
            say(f"{verdict.message}\nstopping.")
            # An interrupt inside ray.init leaves the node's agents behind; once it has returned,
            # Ray stops everything it started when this process exits.
            deadline = time.monotonic() + SHUTDOWN_GRACE_S
            while not self._ray_initialized() and time.monotonic() < deadline and not self._done.wait(0.2):
                pass
            self._interrupt()
            if not self._done.wait(SHUTDOWN_GRACE_S):
                say(f"serve run did not stop within {SHUTDOWN_GRACE_S:g} s of the interrupt; exiting")
                os._exit(3)
            return


def say(message: str) -> None:
    print(f"stemforge.launch: {message}", file=sys.stderr, flush=True)
