"""The ``bots`` section of the configuration (StartBotConversation back ends)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chimevoice.config import BotsConfig, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent
PIZZA = REPO / "config" / "bots" / "pizza.yaml"


def parse(text: str, base: Path) -> object:
    return parse_config(textwrap.dedent(text), base_dir=base, source="test.yaml")


def errors(text: str, base: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(text, base)
    return str(exc.value).splitlines()


def test_default_is_no_local_bots_and_no_lex(tmp_path):
    config = parse("data_dir: var\n", tmp_path)
    assert config.bots == BotsConfig()
    assert dict(config.bots.local) == {} and config.bots.allow_lex is False and config.bots.lex_endpoint_url is None


def test_local_bots_by_bot_id_and_alias_with_paths_relative_to_the_file(tmp_path):
    (tmp_path / "bots").mkdir()
    (tmp_path / "bots" / "pizza.yaml").write_text(PIZZA.read_text())
    config = parse(f"""\
        bots:
          local:
            LOCALPIZZA: bots/pizza.yaml
            OTHERBOT/TSTALIASID: {PIZZA}
          allow_lex: "yes"
          lex_endpoint_url: http://127.0.0.1:9000
        """, tmp_path)
    assert dict(config.bots.local) == {"LOCALPIZZA": tmp_path / "bots" / "pizza.yaml",
                                       "OTHERBOT/TSTALIASID": PIZZA}
    assert config.bots.allow_lex is True and config.bots.lex_endpoint_url == "http://127.0.0.1:9000"


def test_a_bot_id_lex_would_refuse_is_a_warning_not_an_error(tmp_path):
    config = parse(f"""\
        bots:
          local:
            LOCALPIZZA: {PIZZA}
            pizza/TSTALIASID: {PIZZA}
        """, tmp_path)
    assert dict(config.bots.local) == {"LOCALPIZZA": PIZZA, "pizza/TSTALIASID": PIZZA}
    assert [(w.line, w.path) for w in config.warnings] == [(4, "bots.local['pizza/TSTALIASID']")]
    assert "'pizza' is not a Lex V2 bot id (10 letters and digits)" in config.warnings[0].message
    assert parse(f"bots: {{local: {{LOCALPIZZA: {PIZZA}}}}}\n", tmp_path).warnings == ()


def test_example_configuration_binds_the_pizza_bot():
    config = load_config(REPO / "config" / "example.yaml")
    assert dict(config.bots.local) == {"LOCALPIZZA": PIZZA}
    assert config.bots.allow_lex is False


def test_every_problem_is_reported_with_its_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: Broken\nintents: {}\n")
    lines = errors(f"""\
        bots:
          local:
            GOOD: {PIZZA}
            BROKEN: broken.yaml
            MISSING: nowhere.yaml
            "bad id": {PIZZA}
            EMPTY:
          lex_endpoint_url: ftp://lex
          allow_lex: maybe
          lex_region: us-east-1
        """, tmp_path)
    assert lines[0].startswith("test.yaml:4: bots.local.BROKEN: invalid bot definition: ")
    assert "intents" in lines[0]
    assert lines[1] == f"test.yaml:5: bots.local.MISSING: file not found: {tmp_path / 'nowhere.yaml'}"
    assert lines[2].startswith("test.yaml:6: bots.local: invalid bot id 'bad id'")
    assert lines[3] == "test.yaml:7: bots.local.EMPTY: needs the path of a bot definition file"
    assert lines[4].startswith("test.yaml:8: bots.lex_endpoint_url: expected an http:// or https:// URL")
    assert lines[5].startswith("test.yaml:9: bots.allow_lex: ")
    assert lines[6].startswith("test.yaml:10: bots.lex_region: unknown key 'lex_region'")
    assert len(lines) == 7


def test_lex_endpoint_needs_allow_lex(tmp_path):
    lines = errors("bots:\n  lex_endpoint_url: http://127.0.0.1:9000\n", tmp_path)
    assert lines == ["test.yaml:2: bots.lex_endpoint_url: has no effect without allow_lex: true"]
