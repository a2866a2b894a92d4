"""A Node.js handler's own package.json dependencies are installed per application (as its
deployment package would carry them): check-config installs them with npm from the registry into
the data directory, and the handler's worker then requires them. A folder that bundles its own
node_modules is left alone."""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from chimevoice.config import ConfigError
from chimevoice.handler_check import handler_config, load_checked_config
from chimevoice.packages import installed_dir

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is required (scripts/bootstrap)")


def _config(tmp_path: Path, code: Path) -> Path:
    path = tmp_path / "chimevoice.yaml"
    path.write_text(textwrap.dedent(f"""\
        data_dir: {tmp_path / 'data'}
        voice_connectors:
          - {{id: vc1, host_name: vc1.example.com, allow_list: [127.0.0.1/32], phone_numbers: ["+15550100000"]}}
        sip_media_applications:
          - id: app1
            name: with-deps
            handler: {{type: nodejs, target: index.handler, code_dir: {code}}}
        sip_rules:
          - {{id: r1, trigger_type: ToPhoneNumber, trigger_value: "+15550100000",
             target_applications: [{{sip_media_application_id: app1, priority: 1}}]}}
        """))
    return path


def _handler(code: Path, dependencies: dict[str, str]) -> None:
    code.mkdir()
    (code / "package.json").write_text(json.dumps({"name": "with-deps", "version": "1.0.0",
                                                   "dependencies": dependencies}))
    (code / "index.js").write_text(textwrap.dedent("""\
        const isNumber = require("is-number");     // loaded at import: check-config fails without it
        exports.handler = async () => ({SchemaVersion: "1.0", Actions: [], Ok: isNumber(5)});
        """))


def test_package_json_dependencies_are_installed_once_and_required(tmp_path, capfd):
    code = tmp_path / "handler"
    _handler(code, {"is-number": "7.0.0"})
    cfg = load_checked_config(_config(tmp_path, code))      # installs, then loads it in a Node worker
    deps = installed_dir(cfg.data_dir, "app1", code, node=True)
    assert deps is not None and (deps / "node_modules" / "is-number" / "package.json").is_file()
    assert "installing" in capfd.readouterr().err
    hc = handler_config(cfg.sip_media_applications[0], tmp_path, cfg)
    assert hc.node_modules == (str(deps / "node_modules"),)
    load_checked_config(_config(tmp_path, code))            # same package.json: nothing to do
    assert "installing" not in capfd.readouterr().err


def test_a_dependency_npm_cannot_install_is_a_config_error_on_the_target(tmp_path):
    code = tmp_path / "handler"
    _handler(code, {"is-number": "999.999.999"})
    with pytest.raises(ConfigError) as err:
        load_checked_config(_config(tmp_path, code))
    assert "npm could not install" in str(err.value) and "handler.target" in str(err.value)


def test_a_bundled_node_modules_is_used_as_it_is(tmp_path):
    code = tmp_path / "handler"
    _handler(code, {"is-number": "7.0.0"})
    (code / "node_modules" / "is-number").mkdir(parents=True)
    (code / "node_modules" / "is-number" / "index.js").write_text("module.exports = (n) => n === 5;\n")
    cfg = load_checked_config(_config(tmp_path, code))
    assert installed_dir(cfg.data_dir, "app1", code, node=True) is None
    assert not (tmp_path / "data" / "packages").exists()


def test_an_es_module_handler_imports_its_installed_dependencies(tmp_path):
    """``import`` does not read NODE_PATH: the resolve hook also tries the application's own
    installed node_modules (before the runtime's)."""
    code = tmp_path / "handler"
    code.mkdir()
    (code / "package.json").write_text(json.dumps({"name": "esm-deps", "version": "1.0.0",
                                                   "dependencies": {"is-number": "7.0.0"}}))
    (code / "index.mjs").write_text(textwrap.dedent("""\
        import isNumber from "is-number";           // resolved at import: check-config fails without it
        export const handler = async () => ({SchemaVersion: "1.0", Actions: [], Ok: isNumber(5)});
        """))
    cfg = load_checked_config(_config(tmp_path, code))
    deps = installed_dir(cfg.data_dir, "app1", code, node=True)
    assert deps is not None and (deps / "node_modules" / "is-number").is_dir()
