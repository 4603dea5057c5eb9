"""Running ``serve run CONFIG`` in this process, with the watchdog beside it.

This is Ray's own ``serve`` command (``ray.serve.scripts:cli``, the console script), called in
this process rather than as a child: the watchdog then reads Serve's status as the driver that
started the local cluster, with no address to discover, no dashboard and no second connection.
Ctrl-C reaches ``serve run`` as usual (it deletes the application, then Ray stops with the
process); a SIGTERM ends the driver as Ray's handler has it, which also stops the local cluster.
"""

import signal
from pathlib import Path

from stemforge.launch.watch import Watchdog, say

STARTUP_FAILED = 3


def serve_run(config: Path, app_name: str, timeout: float, ready_hint: str) -> int:
    from ray.serve.scripts import cli

    # Ctrl-C and the watchdog both stop `serve run` by SIGINT (KeyboardInterrupt). A shell that
    # starts us in the background sets SIGINT to ignored, and Python then raises nothing: restore
    # Python's handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    watchdog = Watchdog(app_name, timeout, ready_hint)
    watchdog.start()
    code: int | str | None = 0
    try:
        cli.main(["run", str(config)], prog_name="serve")
    except SystemExit as exit_:  # click and `serve run` leave by sys.exit, Ctrl-C included
        code = exit_.code
    except KeyboardInterrupt:  # before `serve run` got as far as handling it itself
        code = 0
    finally:
        watchdog.stop()
    if watchdog.failure is not None:
        say(f"start-up failed: {watchdog.failure.headline}")
    return exit_status(code, failed=watchdog.failure is not None)


def exit_status(code: int | str | None, failed: bool) -> int:
    """Our status from how ``serve run`` left (``SystemExit.code``)."""
    if failed:
        return STARTUP_FAILED
    if code is None:  # sys.exit(): the normal end of `serve run` after Ctrl-C
        return 0
    return code if isinstance(code, int) else 1  # a str is an error message, already printed
