"""Every config file turnout reads fails with an error that names the file, the key or the
byte offset, and the fix: never a traceback. Driven through the command line (`turnout chat`
reads turnout.toml and .mcp.json before it loads any model), and through the host for a
server that exits at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.agent.host import McpHost, ServerSpec, load_mcp_config
from turnout.runtimes.errors import ToolHostError


def chat_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.chdir(tmp_path)
    code = main(["chat", "--no-builtin-tools", "--json", "hello"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (".mcp.json", b'{"mcpServers": {"x": {"command": "caf\xe9"}}}',
         ".mcp.json is not UTF-8: byte 0xe9 at offset 37 (line 1, column 38); save the file as UTF-8"),
        (".mcp.json", b'{"mcpServers": {"x": {"comand": "echo"}}}',
         "mcpServers.x has the unknown key 'comand'; did you mean 'command'?"),
        (".mcp.json", b'{"mcpServers": {"x": {"command": "echo", "arg": ["a"]}}}',
         "mcpServers.x has the unknown key 'arg'; did you mean 'args'?"),
        (".mcp.json", b'{"mcpServers": {}, "approvals": {"mode": "yolo"}}',
         "approvals.mode: Input should be 'ask', 'auto-edit' or 'full-auto', not 'yolo'"),
        (".mcp.json", b'{"mcpServers": {}, "approvals": {"mod": "ask"}}',
         "approvals has the unknown key 'mod'; did you mean 'mode'?"),
        ("turnout.toml", b'[targets.local]\nruntime = "caf\xe9"\n',
         "turnout.toml is not UTF-8: byte 0xe9 at offset 30 (line 2)"),
    ],
)
def test_a_broken_config_file_is_an_error_that_names_the_place_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    name: str, data: bytes, expected: str,
) -> None:
    (tmp_path / name).write_bytes(data)
    err = chat_error(tmp_path, monkeypatch, capsys)
    assert expected in err
    assert str(tmp_path / name) in err


def test_keys_other_clients_write_are_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "cline.json"
    config.write_text(
        '{"mcpServers": {"x": {"command": "echo", "alwaysAllow": [], "autoApprove": [], '
        '"transportType": "stdio", "description": "a server"}}}',
        encoding="utf-8",
    )
    assert [spec.command for spec in load_mcp_config(config)] == ["echo"]


@pytest.mark.parametrize("argv", [["-c", "raise SystemExit(1)"], ["-c", "print('not MCP')"]])
def test_a_server_that_exits_at_once_is_reported_plainly(argv: list[str]) -> None:
    spec = ServerSpec(name="quits", command=sys.executable, args=argv)
    with pytest.raises(ToolHostError) as caught, McpHost([spec], start_timeout=20):
        pass
    message = str(caught.value)
    assert "quits: failed to start" in message
    assert "closed the connection before answering the MCP handshake" in message
    assert "TaskGroup" not in message and "sub-exception" not in message
