"""The Grafana dashboard in cluster/ charts metrics the service really records."""

import json
import re
from pathlib import Path

from stemforge.observability import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "cluster" / "grafana-dashboard.json"


def _recorded_names() -> set[str]:
    source = Path(metrics.__file__).read_text()
    return set(re.findall(r'"(stemforge_[a-z_]+)"', source))


def test_every_stemforge_metric_on_the_dashboard_is_recorded_and_every_recorded_one_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    charted = {
        re.sub(r"_bucket$", "", name) for e in exprs for name in re.findall(r"ray_(stemforge_[a-z_]+)", e)
    }
    recorded = _recorded_names()
    assert charted <= recorded, f"charted but never recorded: {sorted(charted - recorded)}"
    assert recorded <= charted, f"recorded but not charted: {sorted(recorded - charted)}"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
