"""What a serve config asks of Ray at start-up, against what the machine has.

Ray schedules by declared resources: a replica whose CPUs or GPUs are not free stays pending for
ever, with no error (a config for GPUs on a CPU box, or CPU shares adding up to more than the
cores). Summing the asks finds that in milliseconds instead of an endless wait. On one machine the
sum is the test for CPUs; for fractional GPUs it is a necessary condition (Ray also packs them
per device).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stemforge.launch.machine import Machine
from stemforge.launch.serveconfig import deployments

# Ray's default for a replica whose ray_actor_options do not say (see the notes on YAML options
# replacing the decorator's).
DEFAULT_NUM_CPUS = 1.0


@dataclass(frozen=True)
class Demand:
    deployment: str
    replicas: int  # at start-up
    num_cpus: float  # per replica
    num_gpus: float

    @property
    def cpus(self) -> float:
        return self.replicas * self.num_cpus

    @property
    def gpus(self) -> float:
        return self.replicas * self.num_gpus

    def describe(self) -> str:
        each = f"{self.num_cpus:g} CPU" + (f", {self.num_gpus:g} GPU" if self.num_gpus else "")
        total = f"{self.cpus:g} CPU" + (f", {self.gpus:g} GPU" if self.gpus else "")
        plural = "replica" if self.replicas == 1 else "replicas"
        return f"{self.deployment}: {self.replicas} {plural} x {each} = {total}"


def start_replicas(deployment: Mapping[str, Any], default: int = 1) -> int:
    """Replicas Serve starts with: ``num_replicas``, or an autoscaling deployment's
    ``initial_replicas`` / ``min_replicas`` (Serve's default minimum is 1); ``default`` when the
    config says neither (the code's own value, e.g. WORKERS for the ingress)."""
    autoscaling = deployment.get("autoscaling_config")
    replicas = deployment.get("num_replicas")
    if isinstance(replicas, int):
        return replicas
    if autoscaling is None and replicas is None:
        return default
    autoscaling = autoscaling or {}
    minimum = int(autoscaling.get("min_replicas", 1))
    return max(minimum, int(autoscaling.get("initial_replicas") or 0))


def demands(
    application: Mapping[str, Any], default_replicas: Mapping[str, int] | None = None
) -> list[Demand]:
    found = []
    for name, deployment in deployments(application).items():
        options = deployment.get("ray_actor_options") or {}
        found.append(
            Demand(
                deployment=name,
                replicas=start_replicas(deployment, (default_replicas or {}).get(name, 1)),
                num_cpus=float(options.get("num_cpus", DEFAULT_NUM_CPUS)),
                num_gpus=float(options.get("num_gpus", 0.0)),
            )
        )
    return found


def shortfall(found: list[Demand], machine: Machine, config_name: str) -> str | None:
    """None when the asks fit the machine; else a message naming each deployment, what it asks
    and what the machine has."""
    # Ray keeps resources in units of 1/10000: round the sums the same way (0.1 + 0.2 + ...).
    cpus = round(sum(d.cpus for d in found), 4)
    gpus = round(sum(d.gpus for d in found), 4)
    short = []
    if cpus > machine.cpus:
        short.append(f"CPUs: the deployments ask for {cpus:g} at start-up; this machine has {machine.cpus:g}")
    if gpus > machine.gpus:
        short.append(f"GPUs: the deployments ask for {gpus:g} at start-up; this machine has {machine.gpus}")
    if not short:
        return None
    relevant = [d for d in found if (cpus > machine.cpus and d.cpus) or (gpus > machine.gpus and d.gpus)]
    lines = [
        f"{config_name} cannot start on this machine ({machine.describe()}): "
        "Ray would leave replicas pending for ever.",
        *(f"  {line}" for line in short),
        "  asked (replicas at start-up x each replica's ray_actor_options):",
        *(f"    {d.describe()}" for d in sorted(relevant, key=lambda d: (-d.gpus, -d.cpus))),
        "  Lower num_cpus, num_gpus or replicas (for a variant: its overlay in configs/variants.yaml), "
        "or use another config.",
    ]
    return "\n".join(lines)
