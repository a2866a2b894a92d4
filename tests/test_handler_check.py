"""check-config and run load every python handler once (issue 12, item 4): a module that does
not import or a function that does not exist is a configuration error on the target's line."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import yaml

from lambda_bridge import HandlerConfig
from lambda_bridge.preflight import check_python_handler
from tests.support.harness import ROOT, Daemon, free_port, handler_app

APPS = [f"dddddddd-0000-4000-8000-00000000000{i}" for i in range(5)]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chimevoice", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def write(tmp_path, targets: list[str], env: dict | None = None):
    d = Daemon(tmp_path, free_port())
    path = d.write_config([handler_app(APPS[i], f"app{i}", t, env) for i, t in enumerate(targets)])
    text = path.read_text().splitlines()

    def line_of(target: str) -> int:
        return text.index(f"    target: {target}") + 1   # the target key of that application

    return path, line_of


def test_check_config_reports_each_handler_that_does_not_load_on_its_target_line(tmp_path):
    targets = ["greeter:handler", "nosuchmodule:handler", "greeter:handlr", "import_error:handler",
               "greeter.py:handler"]
    path, line_of = write(tmp_path, targets)
    res = cli("check-config", str(path))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.splitlines()
    handlers = str(ROOT / "tests" / "handlers")
    assert lines == [
        "chimevoice: invalid configuration",
        f"{path}:{line_of('nosuchmodule:handler')}: sip_media_applications[1].handler.target: "
        f"Runtime.ImportModuleError: Unable to import module 'nosuchmodule': No module named 'nosuchmodule' "
        f"(python_path: {handlers})",
        f"{path}:{line_of('greeter:handlr')}: sip_media_applications[2].handler.target: "
        "Runtime.HandlerNotFound: Handler 'handlr' missing on module 'greeter' (did you mean 'handler'?)",
        f"{path}:{line_of('import_error:handler')}: sip_media_applications[3].handler.target: "
        "KeyError: error while importing module 'import_error': 'IMPORT_ERROR_GREETING' "
        f"(raised at {handlers}/import_error.py:5)",
        f"{path}:{line_of('greeter.py:handler')}: sip_media_applications[4].handler.target: "
        "Runtime.ImportModuleError: Unable to import module 'greeter.py': No module named 'greeter.py'; "
        "'greeter' is not a package (a module is named without .py: write greeter:handler; "
        f"python_path: {handlers})",
    ], res.stderr


def test_check_config_passes_the_environment_to_module_level_code(tmp_path):
    path, _ = write(tmp_path, ["greeter:handler", "import_error:handler"], {"IMPORT_ERROR_GREETING": "hi"})
    res = cli("check-config", str(path))
    assert res.returncode == 0, res.stderr
    assert "OK (1 voice connectors, 2 SIP media applications" in res.stdout


def test_run_refuses_to_start_with_the_same_message(tmp_path):
    path, line_of = write(tmp_path, ["greeter:handlr"])
    res = cli("run", "-c", str(path))
    assert res.returncode == 2
    assert res.stderr.splitlines() == [
        "chimevoice: invalid configuration",
        f"{path}:{line_of('greeter:handlr')}: sip_media_applications[0].handler.target: "
        "Runtime.HandlerNotFound: Handler 'handlr' missing on module 'greeter' (did you mean 'handler'?)",
    ]
    assert "chimevoice_ready" not in res.stderr


def test_non_python_handlers_are_not_loaded(tmp_path):
    path, _ = write(tmp_path, ["greeter:handler"])
    data = yaml.safe_load(path.read_text())
    data["sip_media_applications"].append({"id": APPS[1], "name": "hook", "handler": {
        "type": "http", "target": "http://127.0.0.1:9/never-contacted"}})
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = cli("check-config", str(path))
    assert res.returncode == 0, res.stderr


def test_a_handler_whose_import_hangs_is_reported_after_the_timeout(tmp_path):
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(60)\n\ndef handler(event, context):\n    pass\n")
    cfg = HandlerConfig(type="python", target="hangs:handler", function_name="hangs", python_path=(str(tmp_path),))
    t0 = time.monotonic()
    problem = asyncio.run(check_python_handler(cfg, timeout_s=1.0))
    assert time.monotonic() - t0 < 5
    assert problem == "the handler module did not load within 1 s (does its module-level code hang?)"


def test_a_worker_that_exits_during_import_is_reported_with_its_last_output(tmp_path):
    (tmp_path / "quits.py").write_text("import os\nprint('no database')\nos._exit(3)\n")
    cfg = HandlerConfig(type="python", target="quits:handler", function_name="quits", python_path=(str(tmp_path),))
    problem = asyncio.run(check_python_handler(cfg, timeout_s=5.0))
    assert problem == "the worker exited while loading the handler: exit status 3; last output: no database"


def test_check_config_loads_node_handlers_too(tmp_path):
    """A nodejs handler is loaded once in a Node worker: a missing file or export, code that throws at
    load time or a TypeScript file that does not bundle is an error on the target's line, with file:line."""
    node_dir = ROOT / "tests" / "lambda_bridge" / "node_handlers"
    targets = ["basic.handler", "nowhere.handler", "esm_handler.handlr", "init_throws.handler", "ts/broken.handler",
               "ts/index.handler"]
    d = Daemon(tmp_path, free_port())
    path = d.write_config([{"id": APPS[i % 5] if i < 5 else "dddddddd-0000-4000-8000-000000000009",
                            "name": f"node{i}", "handler": {"type": "nodejs", "target": t, "code_dir": str(node_dir)}}
                           for i, t in enumerate(targets)])
    text = path.read_text().splitlines()

    def line_of(target: str) -> int:
        return text.index(f"    target: {target}") + 1

    res = cli("check-config", str(path))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.splitlines() == [
        "chimevoice: invalid configuration",
        f"{path}:{line_of('nowhere.handler')}: sip_media_applications[1].handler.target: "
        f"Runtime.ImportModuleError: Error: Cannot find module 'nowhere' (task root: {node_dir})",
        f"{path}:{line_of('esm_handler.handlr')}: sip_media_applications[2].handler.target: "
        "Runtime.HandlerNotFound: esm_handler.handlr is undefined or not exported (did you mean 'handler'? "
        f"({node_dir}/esm_handler.mjs exports handler))",
        f"{path}:{line_of('init_throws.handler')}: sip_media_applications[3].handler.target: "
        f"Error: TABLE_NAME is not set (raised at {node_dir}/init_throws.js:3)",
        f"{path}:{line_of('ts/broken.handler')}: sip_media_applications[4].handler.target: "
        f"esbuild could not bundle the handler: {node_dir}/ts/broken.ts:1:24: Could not resolve \"./lib/missing\"",
    ], res.stderr
