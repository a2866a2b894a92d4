"""With ``logging.format: json`` everything the daemon writes is JSON lines (issue 12, item 3):
pjlib's own log (pj_init in libCreate, before libInit installs the LogWriter, and libDestroy) goes
through structlog too, not to stdout as plain text."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.harness import APP_A, ROOT, Daemon, free_port, handler_app

pytestmark = pytest.mark.sip


def start_with_stdout_and_stderr_in_one_file(d: Daemon, *extra: str) -> None:
    """Like ``Daemon.start`` but stdout goes to the log too, as under systemd (the journal)."""
    d.log_path = d.workdir / "daemon.log"
    out = open(d.log_path, "w")
    d.proc = subprocess.Popen([sys.executable, "-m", "chimevoice", "run", "-c", str(d.config_path),
                               "--drain-seconds", "1", *extra], cwd=ROOT, stdout=out, stderr=out)
    out.close()
    d.wait_log("chimevoice_ready", timeout=20)


def assert_all_json(text: str) -> list[dict]:
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} of the daemon's output is not JSON: {line!r}\n{text[:3000]}")
        assert isinstance(event, dict), line
        events.append(event)
    return events


@pytest.mark.parametrize("level", ["info", "debug"])
def test_every_line_the_daemon_writes_is_a_json_object(tmp_path, level):
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    d = Daemon(tmp_path, free_port())
    d.write_config([handler_app(APP_A, "greeter", "greeter:handler",
                                {"EVENTS_DIR": str(events_dir), "PROMPT_BUCKET": "prompts"})])
    start_with_stdout_and_stderr_in_one_file(d, "--log-level", level)
    try:
        d.call(hangup_after=1.0, max_seconds=5)
    finally:
        code = d.stop()
    assert code == 0
    events = assert_all_json(d.log_path.read_text())
    names = [e.get("event") for e in events]
    assert "chimevoice_ready" in names and names[-1] == "stopped"
    pjsip = [e for e in events if e.get("event") == "pjsip"]
    if level == "debug":
        # pjlib's start-up lines are there, as structured debug events with pjlib's level
        assert any("pjlib" in e["msg"] and "initialized" in e["msg"] for e in pjsip), pjsip[:5]
        assert {e["level"] for e in pjsip} <= {"error", "warning", "info", "debug"}
        assert all(isinstance(e["pj_level"], int) for e in pjsip)
    else:
        assert all(e["level"] == "error" for e in pjsip), pjsip   # pj_log_level 1: errors only
