"""The ``api:`` configuration section."""
from __future__ import annotations

from pathlib import Path

import pytest

from chimevoice.config import AccessKey, ApiConfig, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]

BASE = """\
data_dir: /tmp/chimevoice-test
api:
"""


def parse(section: str):
    return parse_config(BASE + section, base_dir=Path("/tmp"), source="cv.yaml")


def errors(section: str) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        parse(section)
    return str(excinfo.value).splitlines()


def test_absent_section_means_off():
    config = parse_config("data_dir: /tmp/x\n", base_dir=Path("/tmp"))
    assert config.api == ApiConfig()
    assert config.api.listen is None


def test_full_section():
    config = parse("""\
  listen: "[::1]:8090"
  region: eu-west-1
  account_id: "123456789012"
  access_keys:
    - access_key_id: AKIDEXAMPLE
      secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
""")
    assert config.api == ApiConfig(("::1", 8090), "eu-west-1", "123456789012",
                                   (AccessKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),))
    assert "wJalr" not in repr(config.api)


def test_listen_without_keys_is_an_error():
    assert errors("  listen: 127.0.0.1:8090\n") == [
        "cv.yaml:3: api.access_keys: the API needs at least one access key (requests are SigV4-signed)"]


@pytest.mark.parametrize(("listen", "message"), [
    ("127.0.0.1", "expected ADDRESS:PORT"),
    ("127.0.0.1:0", "expected ADDRESS:PORT"),
    ("localhost:8090", "'localhost' is not an IPv4 or IPv6 address"),
])
def test_bad_listen_addresses(listen, message):
    [line] = errors(f"""\
  listen: {listen}
  access_keys: [{{access_key_id: AKID, secret_access_key: 0123456789abcdef}}]
""")
    assert line.startswith("cv.yaml:3: api.listen: ") and message in line


def test_key_errors_have_their_lines():
    lines = errors("""\
  listen: 127.0.0.1:8090
  acess_keys: []
  access_keys:
    - access_key_id: AKID/1
      secret_access_key: 0123456789abcdef
    - access_key_id: AKID2
      secret_access_key: short
    - access_key_id: AKID3
""")
    assert lines == [
        "cv.yaml:4: api.acess_keys: unknown key 'acess_keys'; did you mean 'access_keys'?",
        "cv.yaml:6: api.access_keys[0].access_key_id: use 1 to 128 letters, digits and _",
        "cv.yaml:9: api.access_keys[1].secret_access_key: too short: at least 16 characters",
        "cv.yaml:10: api.access_keys[2].secret_access_key: required key is missing",
    ]


def test_duplicate_access_key_ids():
    lines = errors("""\
  listen: 127.0.0.1:8090
  access_keys:
    - {access_key_id: AKID, secret_access_key: 0123456789abcdef}
    - {access_key_id: AKID, secret_access_key: fedcba9876543210}
""")
    assert lines == ["cv.yaml:6: api.access_keys[1].access_key_id: duplicate access key id "
                     "(first in api.access_keys[0])"]


def test_example_configuration_still_loads():
    config = load_config(REPO / "config" / "example.yaml")
    assert config.api.listen in (None, ("127.0.0.1", 8090))


def test_the_commented_example_block_is_valid():
    lines = (REPO / "config" / "example.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# api:"))
    block = [lines[start][2:]] + [line[2:] for line in lines[start + 1:] if line.startswith("#   ")]
    text = "\n".join(lines[:start] + block) + "\n"
    config = parse_config(text, base_dir=REPO / "config")
    assert config.api.listen == ("127.0.0.1", 8090)
    assert [key.access_key_id for key in config.api.access_keys] == ["AKIDEXAMPLE"]
