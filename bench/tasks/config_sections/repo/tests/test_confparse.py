import pytest
from confparse import ConfigError, load_layers, parse, parse_duration

TEXT = """
# deployment settings
[Server]
Host = example.org
port = 8080   # the proxy's port
Debug = off

[paths]
root = /srv/app
logs = ${paths:root}/logs
pid = ${server:host}.pid

[deploy]
hosts = web1,
    web2
    web3
timeout = 1m30s
"""


def test_sections_in_file_order():
    assert parse(TEXT).sections() == ["server", "paths", "deploy"]


def test_option_names_ignore_case():
    assert parse(TEXT).get("paths", "ROOT") == "/srv/app"


def test_typed_values():
    cfg = parse(TEXT)
    assert cfg.getint("SERVER", "port") == 8080
    assert cfg.getbool("Server", "debug") is False


def test_references_are_expanded():
    cfg = parse(TEXT)
    assert cfg.get("paths", "logs") == "/srv/app/logs"
    assert cfg.get("paths", "pid") == "example.org.pid"


def test_lists_and_durations():
    cfg = parse(TEXT)
    assert cfg.getlist("deploy", "hosts") == ["web1", "web2", "web3"]
    assert cfg.getduration("deploy", "timeout") == 90


def test_fallback_for_missing_option():
    assert parse(TEXT).getint("deploy", "retries", fallback=3) == 3


def test_bad_value_names_the_option():
    cfg = parse("[a]\nn = many\n")
    with pytest.raises(ConfigError, match="n: not an integer"):
        cfg.getint("a", "n")


def test_option_outside_a_section():
    with pytest.raises(ConfigError, match="line 1"):
        parse("key = value\n")


def test_durations():
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2h") == 7200
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_round_trip():
    cfg = parse(TEXT)
    assert parse(cfg.to_text()).as_dict() == cfg.as_dict()


def test_layers_override(tmp_path):
    (tmp_path / "a.conf").write_text("[Server]\nport = 1\nhost = a\n")
    (tmp_path / "b.conf").write_text("[server]\nPORT = 2\n")
    cfg = load_layers([tmp_path / "a.conf", tmp_path / "missing.conf", tmp_path / "b.conf"])
    assert cfg.as_dict() == {"server": {"port": "2", "host": "a"}}
