"""`turnout pins`: the tool definitions a team reviews and commits (`turnout-pins.json`).

Without the file, each user's tools are pinned on first use in the user's cache, and a changed
definition is asked about. With it, the repository decides: a tool of another server whose
definition is not in the file exactly as reviewed is hidden in every approval mode.
`turnout pins` starts the mcpServers servers (not turnout's own, which ship with turnout) and
shows each tool against the file; `--write` writes the file from what they offer now, for a
person to review as a diff and commit.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from turnout.agent import compose
from turnout.agent.approvals import COMMITTED_PINS, committed_key, load_committed_pins, pin_of
from turnout.agent.host import McpHost
from turnout.agent.run import check_repo


def add_parser(sub: argparse._SubParsersAction) -> None:
    pins = sub.add_parser(
        "pins", help="show or write the repository's reviewed tool definitions (turnout-pins.json)",
        description="Each tool of the mcpServers servers against REPO/turnout-pins.json: reviewed, "
        "changed, or new. With the file committed, a tool that is not reviewed as it is offered "
        "is hidden in every approval mode. --write writes the file from the servers' tools now.",
    )
    pins.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    pins.add_argument("--mcp", action="append", type=Path, default=[], metavar="FILE",
                      help="an mcpServers JSON file; repeatable (default: REPO/.mcp.json)")
    pins.add_argument("--write", action="store_true", help=f"write REPO/{COMMITTED_PINS} from the tools offered now")
    pins.add_argument("--json", action="store_true", help="print JSON")
    pins.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    repo = check_repo(args.repo)
    servers, _ = compose.chat_tools(repo, args.mcp, builtin_tools=False, approval_mode=None)
    committed = load_committed_pins(repo) or {}
    # The servers' own stderr is noise here; one that fails to start is listed with why.
    with open(os.devnull, "w") as quiet, McpHost(servers, errlog=quiet, roots=[repo], strict=False) as host:
        tools = [info for info in host.refresh_tools() if not info.trusted]
        failed = host.failed_servers()
    rows = []
    for info in tools:
        key = committed_key(info)
        reviewed = committed.get(key)
        status = "new" if reviewed is None else "reviewed" if reviewed.hash == info.definition_hash() else "changed"
        rows.append({"tool": key, "status": status, "hash": info.definition_hash()})
    if args.write:
        data = {committed_key(info): pin_of(info).model_dump() for info in tools}
        (repo / COMMITTED_PINS).write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps({"file": str(repo / COMMITTED_PINS), "tools": rows, "failed_servers": failed,
                          "written": args.write}, indent=2))
    else:
        for row in rows:
            print(f"{row['status']:<9} {row['tool']}")
        for name, why in failed.items():
            print(f"failed    {name}: {why}")
        if args.write:
            print(f"wrote {repo / COMMITTED_PINS} ({len(rows)} tools): review the diff, then commit it")
        elif any(r["status"] != "reviewed" for r in rows):
            print(f"tools not reviewed as offered are hidden once {COMMITTED_PINS} is committed; "
                  "`turnout pins --write` records them")
    return 0
