"""Run the benchmarks: `python -m bench [name ...]`. Without names, the quick set runs;
`musicgen`, `stable_audio` and `diffusion_engines` (many minutes of CPU) run only when named."""

import subprocess
import sys
from pathlib import Path

QUICK = ["service", "procedural", "storage", "quality"]
ALL = [*QUICK, "streaming", "reference", "ingress_memory", "musicgen", "stable_audio", "diffusion_engines"]


def main(names: list[str]) -> int:
    chosen = names or QUICK
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {ALL}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parent.parent
    failed = 0
    for name in chosen:
        print(f"\n=== bench/{name}_bench.py ===", flush=True)
        failed |= subprocess.call([sys.executable, "-m", f"bench.{name}_bench"], cwd=root)
    return failed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
