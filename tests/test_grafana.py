"""deploy/grafana/chimevoice.json names only metrics that a real daemon's /metrics serves.

/metrics prints a counter only once it has been incremented (and no ``# TYPE`` lines), so the
test makes every metric the dashboard uses appear: calls that are answered (set-up and handler
latency), a refused INVITE (404), digits received (RFC 4733) and sent (SendDigits), and a
recording that ends on silence. The media worker's gauges are there from the start."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.harness import (
    ROOT,
    free_port,
    handler_app,
    metrics,
    module_daemon,
    number_rules,
    wait_handler_events,
    write_tone,
)

DASHBOARD = ROOT / "deploy" / "grafana" / "chimevoice.json"
MEDIA_APP = "abababab-0000-4000-8000-000000000001"
DIGITS_APP = "abababab-0000-4000-8000-000000000002"
SEND = "+15550900001"          # tests/handlers/media.py "01": SendDigits 1,2#, Hangup
RECORD = "+15550900003"        # media.py "03": RecordAudio stopped by 1 s of silence
LISTEN = "+15550910001"        # tests/handlers/digits.py "01": ReceiveDigits, hangs up on 34#
NO_RULE = "+15550900099"       # on the trunk, no SIP rule: 404


def dashboard_exprs(dash: dict) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets (rows too) and variable queries."""
    out: list[str] = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            out.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))
    walk(dash["panels"])
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        out.append(query.get("query", "") if isinstance(query, dict) else str(query or ""))
    return out


def metric_names(exprs: list[str]) -> set[str]:
    """Metric names in *exprs*; ``X_bucket`` of a histogram stays as it is (the series /metrics prints)."""
    return {m for e in exprs for m in re.findall(r"\bchimevoice_[a-z0-9_]*[a-z0-9]", e)}


def exported(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(chimevoice_[a-z0-9_]+)[{ ]", text, re.M)}


def test_dashboard_is_an_importable_grafana_10_dashboard():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["__inputs"][0]["type"] == "datasource" and dash["__inputs"][0]["pluginId"] == "prometheus"
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for p in panels:
        assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", p["title"]
        assert p["targets"] and p["description"], p["title"]
    titles = " | ".join(p["title"] for p in panels)
    for want in ("Calls active", "Calls per second", "set-up latency", "Handler latency", "Handler invocations",
                 "DTMF", "Recordings", "Refusals", "Admission refusals", "Errors by type", "RTP loss",
                 "RTP jitter"):
        assert want.lower() in titles.lower(), titles
    histograms = [e for e in dashboard_exprs(dash) if "histogram_quantile" in e]
    # every quantile groups by le (and maybe a label it shows: by (le, application))
    assert histograms and all("_bucket" in e and re.search(r"by \(le(, [a-z_]+)*\)", e) for e in histograms), \
        histograms


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "grafana")
    d.http_port = free_port()
    env = {"EVENTS_DIR": str(d.events), "PROMPT_BUCKET": "prompts"}
    d.write_config([handler_app(MEDIA_APP, "media", "media:handler", env),
                    handler_app(DIGITS_APP, "digits", "digits:handler", env)],
                   rules=[*number_rules([SEND, RECORD], MEDIA_APP, "cdcdcdcd-0000-4000-8000", "media"),
                          *number_rules([LISTEN], DIGITS_APP, "efefefef-0000-4000-8000", "digits")],
                   numbers=[SEND, RECORD, LISTEN, NO_RULE])
    write_tone(d.prompts / "tone400.wav", 400, 1.0)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


@pytest.mark.sip
def test_every_metric_the_dashboard_names_is_on_metrics(daemon, tmp_path: Path):
    assert daemon.call(user=SEND, max_seconds=15)["answered"]                      # digits sent, rfc4733
    assert daemon.call(user=RECORD, max_seconds=15)["answered"]                    # recording, silence
    assert daemon.call(user=LISTEN, max_seconds=15, dtmf=["1.0:34#"])["answered"]  # digits received
    assert daemon.call(user=NO_RULE, max_seconds=5)["final_status"] == 404         # a refusal
    wait_handler_events(daemon.events / "digits.jsonl", LISTEN)
    daemon.wait_log("recording_finished", reason="silence")
    text = metrics(daemon)
    names = metric_names(dashboard_exprs(json.loads(DASHBOARD.read_text())))
    assert len(names) >= 12, names
    missing = sorted(names - exported(text))
    assert not missing, f"the dashboard names metrics /metrics does not serve: {missing}\n{text}"
