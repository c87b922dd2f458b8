"""`turnout bench NAME`: the benchmarks, each comparing its modes side by side in one process.

The one module of `agent/` that reaches into `bench/` (the benchmarks drive the agent, never the
other way round). What each measures, its latest figures and how long it takes: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from turnout.agent.cli.args import command_group
from turnout.agent.cli.output import say
from turnout.agent.paths import cache_dir
from turnout.bench import agent, ceiling, context, sampling, speculative
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models


def add_parser(sub: argparse._SubParsersAction) -> None:
    bsub = command_group(sub, "bench", "NAME",
                         help="benchmarks measured side by side in one run",
                         description="Benchmarks that compare modes side by side in one "
                         "process and report ratios (the machine may be shared and noisy).")

    bspec = bsub.add_parser(
        "speculative", help="speculative decoding: our drafters vs none vs llama-cpp-python's",
        description="Decode speed, acceptance, exactness and peak memory of turnout's "
        "speculative decoding (suffix, draft-model) against no speculation and "
        "llama-cpp-python's prompt lookup, on rewrite, patch, toolcall, markdown, session and "
        "prose workloads.",
    )
    bspec.add_argument("--model", default=models.DEFAULT_MODEL, help="target model (default: %(default)s)")
    bspec.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    bspec.add_argument("--rounds", type=int, default=3, help="rounds; medians over them (default: 3)")
    bspec.add_argument("--modes", default=",".join(speculative.MODES),
                       help=f"comma list of {', '.join(speculative.MODES)}")
    bspec.add_argument("--workloads", default="", help="comma list (default: all)")
    bspec.add_argument("--n-ctx", type=int, default=4096, help="context window (default: 4096)")
    bspec.add_argument("--max-tokens", type=int, default=0,
                       help="cap every call's reply at N tokens (0: the workloads' own budgets)")
    bspec.add_argument("--no-calibrate", action="store_true",
                       help="use the built-in CPU cost curve instead of measuring this machine's")
    bspec.add_argument("--json", action="store_true", help="print one JSON object")
    bspec.set_defaults(handler=run_speculative)

    bceil = bsub.add_parser(
        "ceiling", help="what speculation could gain on those workloads, on this machine and a GPU",
        description="Records the workloads' plain greedy outputs once, then replays them through "
        "the suffix drafter without the model: the speedup its own draft lengths would give "
        "(modelled), the most its proposals could give (oracle: each verified exactly up to "
        "its first wrong token) and the most any drafter that copies from the session could give "
        "(bound: right about every token that followed the same token earlier in the session), "
        "priced with this machine's calibrated batch cost curve and with a built-in H100 curve.",
    )
    bceil.add_argument("--model", default=models.DEFAULT_MODEL, help="target model (default: %(default)s)")
    bceil.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    bceil.add_argument("--traces", type=Path, default=None, metavar="FILE.json",
                       help="where the recorded greedy outputs are kept (default: in turnout's "
                       "cache, per model); recorded when missing")
    bceil.add_argument("--record", action="store_true", help="record the traces again")
    bceil.add_argument("--json", action="store_true", help="print one JSON object")
    bceil.set_defaults(handler=run_ceiling)

    bctx = bsub.add_parser(
        "context", help="the context cliff: speed, first-token time and KV memory as the prompt grows",
        description="Prefill tok/s, time to first token cold and with the prefix cached (an "
        "agent's next turn), decode tok/s, KV cache MB and greedy exactness at each prompt "
        "length, for each KV cache setting (f16, f16 with flash attention, q8_0 with flash "
        "attention), side by side in one process. The prompt is turnout's own source cut to "
        "each length; `--kv f16 --lengths 1024,4096` is a shorter look.",
    )
    bctx.add_argument("--model", default=models.DEFAULT_MODEL, help="model (default: %(default)s)")
    bctx.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    bctx.add_argument("--lengths", default=",".join(map(str, context.DEFAULT_LENGTHS)),
                      help="prompt lengths in tokens, comma list (default: %(default)s)")
    bctx.add_argument("--kv", default=",".join(context.KV_SETTINGS),
                      help="KV cache settings to compare, comma list; the first is the "
                      "reference for 'same as' (default: %(default)s)")
    bctx.add_argument("--decode", type=int, default=32,
                      help="reply tokens to decode at each length (default: %(default)s)")
    bctx.add_argument("--rounds", type=int, default=1, help="rounds; medians over them (default: 1)")
    bctx.add_argument("--json", action="store_true", help="print one JSON object")
    bctx.set_defaults(handler=run_context)

    bagent = bsub.add_parser(
        "agent", help="the agent on the task suite (bench/tasks), configurations side by side",
        description="Runs `turnout run` on every task of bench/tasks (bugs in one function, and "
        "features checked by hidden tests) in a fresh workspace per configuration, then verifies "
        "each with the task's own tests restored. Reports pass rate, wall time, time to the "
        "landed edit, candidates and tokens per task and configuration, and a PNG plot. Resumes "
        "from its record; --tasks picks a few tasks.",
    )
    agent.add_arguments(bagent)
    bagent.set_defaults(handler=lambda args: agent.run_cli(args, say))

    bsamp = bsub.add_parser(
        "sampling", help="n sampled candidates as parallel sequences vs greedy and vs n calls",
        description="Decode cost of n completions sampled as parallel sequences that share the "
        "prompt's KV cache (one batch per step), against one greedy completion of the same "
        "length and against n separate sampled calls, and whether each sequence equals its seed "
        "sampled alone.",
    )
    bsamp.add_argument("--model", default=models.DEFAULT_MODEL, help="model (default: %(default)s)")
    bsamp.add_argument("--tokens", type=int, default=200, help="tokens per sequence (default: 200)")
    bsamp.add_argument("--n", default="4,8", help="parallel sizes, comma list (default: 4,8); "
                       "the first is also run as that many separate calls")
    bsamp.add_argument("--rounds", type=int, default=3, help="rounds; medians over them (default: 3)")
    bsamp.add_argument("--temperature", type=float, default=0.8, help="(default: 0.8)")
    bsamp.add_argument("--seed", type=int, default=0, help="seed of the first sequence (default: 0)")
    bsamp.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    bsamp.add_argument("--n-ctx", type=int, default=4096, help="context window (default: 4096)")
    bsamp.add_argument("--flash-attn", action="store_true",
                       help="llama.cpp's flash attention (parallel sequences then equal their "
                       "lone replies bit for bit)")
    bsamp.add_argument("--json", action="store_true", help="print one JSON object")
    bsamp.set_defaults(handler=run_sampling)


def run_speculative(args: argparse.Namespace) -> int:
    modes = tuple(m for m in args.modes.split(",") if m)
    unknown = [m for m in modes if m not in speculative.MODES]
    if unknown or "none" not in modes:
        raise UsageError(
            f"--modes must include none and only use {', '.join(speculative.MODES)}; got {args.modes}"
        )
    report = speculative.run_bench(
        model=args.model, threads=args.threads, rounds=args.rounds, modes=modes,
        only=[w for w in args.workloads.split(",") if w] or None, n_ctx=args.n_ctx,
        calibrate=not args.no_calibrate, max_tokens=args.max_tokens, say=say,
    )
    print(json.dumps(report, indent=2) if args.json else speculative.render(report))
    return 0


def run_ceiling(args: argparse.Namespace) -> int:
    path: Path = args.traces or cache_dir() / "bench" / f"ceiling-traces-{args.model}.json"
    traces = ceiling.traces(args.model, args.threads, path, again=args.record, say=say)
    report = ceiling.ceiling_report(traces)
    print(json.dumps(report, indent=2) if args.json else ceiling.render(report))
    return 0


def run_context(args: argparse.Namespace) -> int:
    if args.decode < 2 or args.rounds < 1:
        raise UsageError("--decode must be at least 2 and --rounds at least 1")
    result = context.run_bench(
        model=args.model, threads=args.threads, rounds=args.rounds,
        lengths=context.parse_lengths(args.lengths), settings=context.parse_settings(args.kv),
        decode=args.decode, say=say,
    )
    print(json.dumps(result, indent=2) if args.json else context.render(result))
    return 0


def run_sampling(args: argparse.Namespace) -> int:
    try:
        ns = [int(x) for x in args.n.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--n takes a comma list of whole numbers, got {args.n!r}") from None
    if args.tokens < 2 or args.rounds < 1 or args.temperature <= 0:
        raise UsageError("--tokens must be at least 2, --rounds at least 1, --temperature > 0")
    report = sampling.run_bench(
        model=args.model, threads=args.threads, tokens=args.tokens, ns=ns, rounds=args.rounds,
        temperature=args.temperature, seed=args.seed, n_ctx=args.n_ctx, say=say,
        flash_attn=args.flash_attn,
    )
    print(json.dumps(report, indent=2) if args.json else sampling.render(report))
    return 0
