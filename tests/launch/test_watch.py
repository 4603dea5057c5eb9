"""Deciding from Serve's status whether start-up succeeded, failed, or is still going."""

import threading
from types import SimpleNamespace

from stemforge.launch.watch import AppState, DeploymentState, Watchdog, app_state, judge

APP = "stemforge"
SCHEDULING = (
    "Deployment 'MusicGenEngine' in application 'stemforge' has 1 replicas that have taken more than 30s "
    "to be scheduled. This may be due to waiting for the cluster to auto-scale or for a runtime environment "
    "to be installed. Resources required for each replica: {'CPU': 2.0, 'GPU': 0.5}, total resources "
    "available: {'CPU': 0.65}. Use `ray status` for more details."
)


def _state(status: str, message: str = "", **deployments: tuple[str, str]) -> AppState:
    return AppState(status, message, {name: DeploymentState(*d) for name, d in deployments.items()})


def test_running_is_success() -> None:
    verdict = judge(_state("RUNNING", Ingress=("HEALTHY", "")), APP, elapsed=21.4, timeout=300)
    assert verdict is not None and verdict.running
    assert "RUNNING after 21 s" in verdict.message


def test_still_deploying_keeps_waiting() -> None:
    assert judge(None, APP, elapsed=5, timeout=300) is None
    assert judge(_state("DEPLOYING", MusicGenEngine=("UPDATING", "")), APP, elapsed=100, timeout=300) is None
    slow_init = "Deployment 'MusicGenEngine' ... have taken more than 30s to initialize."
    assert judge(_state("DEPLOYING", MusicGenEngine=("UPDATING", slow_init)), APP, 60, 300) is None


def test_deploy_failed_names_the_deployment_and_serve_s_message() -> None:
    traceback = (
        "Traceback (most recent call last):\n  ...\nConfigurationError: MUSICGEN_MODEL='/x': no such folder"
    )
    state = _state(
        "DEPLOY_FAILED",
        "Deploying app 'stemforge' failed",
        Ingress=("HEALTHY", ""),
        MusicGenEngine=("DEPLOY_FAILED", f"The deployment failed to start 3 times in a row.\n{traceback}"),
    )
    verdict = judge(state, APP, elapsed=27, timeout=300)
    assert verdict is not None and not verdict.running
    assert "deployment MusicGenEngine is DEPLOY_FAILED" in verdict.message
    assert "no such folder" in verdict.message and "Ingress" not in verdict.message
    assert (
        verdict.headline
        == "MusicGenEngine is DEPLOY_FAILED: ConfigurationError: MUSICGEN_MODEL='/x': no such folder"
    )


def test_an_application_that_failed_to_build_says_why() -> None:
    verdict = judge(_state("DEPLOY_FAILED", "ImportError: no module named deployments"), APP, 5, 300)
    assert verdict is not None and "ImportError: no module named deployments" in verdict.message


def test_an_unschedulable_replica_fails_at_once_with_serve_s_numbers() -> None:
    state = _state("DEPLOYING", MusicGenEngine=("UPDATING", SCHEDULING), Ingress=("HEALTHY", ""))
    verdict = judge(state, APP, elapsed=35, timeout=300)
    assert verdict is not None and not verdict.running
    assert "MusicGenEngine is stuck unscheduled" in verdict.message
    assert "{'CPU': 2.0, 'GPU': 0.5}" in verdict.message


def test_timeout_names_what_is_not_healthy() -> None:
    state = _state(
        "DEPLOYING", Ingress=("HEALTHY", ""), MusicGenEngine=("UPDATING", "taking long to initialize")
    )
    verdict = judge(state, APP, elapsed=301, timeout=300)
    assert verdict is not None and not verdict.running
    assert "not RUNNING after 300 s (STARTUP_TIMEOUT_SECONDS)" in verdict.message
    assert "deployment MusicGenEngine is UPDATING" in verdict.message and "Ingress" not in verdict.message
    never = judge(None, APP, elapsed=301, timeout=300)
    assert never is not None and "Ray or Serve did not start" in never.message


def test_app_state_reads_serve_status() -> None:
    status = SimpleNamespace(
        applications={
            APP: SimpleNamespace(
                status=SimpleNamespace(value="RUNNING"),
                message="",
                deployments={
                    "Ingress": SimpleNamespace(status=SimpleNamespace(value="HEALTHY"), message=None)
                },
            )
        }
    )
    assert app_state(status, APP) == _state("RUNNING", Ingress=("HEALTHY", ""))
    assert app_state(SimpleNamespace(applications={}), APP) is None


def test_the_watchdog_interrupts_on_failure_and_not_on_success() -> None:
    interrupted = threading.Event()

    def run(state: AppState) -> Watchdog:
        dog = Watchdog(
            APP,
            300,
            "curl ...",
            poll_s=0.01,
            state=lambda _: state,
            ray_initialized=lambda: True,
            interrupt=interrupted.set,
        )
        dog.start()
        return dog

    ok = run(_state("RUNNING"))
    ok.join(5)
    assert not ok.is_alive() and ok.failure is None and not interrupted.is_set()

    failed = run(_state("DEPLOY_FAILED", "boom"))
    assert interrupted.wait(5)
    failed.stop()  # what serving does once `serve run` has returned
    failed.join(5)
    assert failed.failure is not None and "boom" in failed.failure.message


def test_exit_status_after_serve_run() -> None:
    from stemforge.launch.serving import STARTUP_FAILED, exit_status

    assert exit_status(None, failed=False) == 0  # Ctrl-C: `serve run` ends with sys.exit()
    assert exit_status(0, failed=False) == 0
    assert exit_status(1, failed=False) == 1  # click's "Aborted!"
    assert exit_status("boom", failed=False) == 1
    assert exit_status(None, failed=True) == STARTUP_FAILED  # the watchdog stopped it
