"""The chimevoice command line: help, check-config, start-up failures."""
from __future__ import annotations

import socket
import subprocess
import sys

from tests.support.harness import ROOT, Daemon, free_port, handler_app

EXAMPLE = ROOT / "config" / "example.yaml"


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chimevoice", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_help_explains_commands():
    res = run("--help")
    assert res.returncode == 0
    for word in ("run", "check-config", "SIP media application", "exit status"):
        assert word in res.stdout
    res = run("run", "--help")
    assert res.returncode == 0 and "--drain-seconds" in res.stdout and "--http" in res.stdout


def test_check_config_ok_and_errors_with_line_numbers(tmp_path):
    res = run("check-config", str(EXAMPLE))
    assert res.returncode == 0 and "OK" in res.stdout
    bad = tmp_path / "bad.yaml"
    text = EXAMPLE.read_text().replace("      - 127.0.0.0/8", "      - 127.0.0.999/8")
    bad.write_text(text)
    line = text.splitlines().index("      - 127.0.0.999/8") + 1
    res = run("check-config", str(bad))
    assert res.returncode == 2
    assert f"{bad}:{line}:" in res.stderr and "allow_list" in res.stderr


def test_check_config_prints_warnings_and_still_succeeds(tmp_path):
    odd = tmp_path / "odd.yaml"
    text = EXAMPLE.read_text().replace("LOCALPIZZA:", "pizza:")
    odd.write_text(text.replace("../", str(EXAMPLE.parent.parent) + "/").replace(
        "bots/pizza.yaml", str(EXAMPLE.parent / "bots" / "pizza.yaml")))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("pizza:"))
    res = run("check-config", str(odd))
    assert res.returncode == 0 and "OK" in res.stdout, res
    assert f"warning: {odd}:{line}: bots.local.pizza: 'pizza' is not a Lex V2 bot id" in res.stdout, res.stdout


def test_missing_config_file_is_a_clear_error(tmp_path):
    res = run("run", "-c", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2 and "nope.yaml" in res.stderr


def test_port_in_use_fails_with_a_clear_message(tmp_path):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.bind(("127.0.0.1", port))
        d = Daemon(tmp_path, port)
        d.write_config([handler_app("aaaaaaaa-0000-4000-8000-000000000001", "g", "greeter:handler")])
        res = run("run", "-c", str(d.config_path))
    assert res.returncode == 1
    assert "cannot listen on udp:127.0.0.1:%d" % port in res.stderr
