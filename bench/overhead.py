"""Overhead benchmark: scan plus routing decision on a 32k-token request (target: <= 5 ms median).

    .venv/bin/python bench/overhead.py [--runs 41] [--json]

The request is what an agent sends late in a task: a system prompt, the task, and tool results
carrying source files (real code from the installed packages, about 128 KB, i.e. ~32k tokens at
4 characters a token), with a few fake secrets, an email and a read from a labelled path. It
measures `PolicyRouter.explain` (scan, taint, classification, decision, request hash), the same
path `chat` takes before it calls a model:

- cold: a fresh router each time, so nothing is cached (the worst case, the first request);
- warm: the same request again on the same router (an agent resends its history every turn);
- next turn: the request plus one new tool result (only the new message is scanned).

Timings are CPU time of this process by default (`--clock wall` for wall time): on a shared
machine a 5 ms computation is often descheduled midway, and wall time then measures the other
jobs. It also times pathological inputs of the same size (long runs of one character, many partial
matches), which would take seconds with a catastrophically backtracking expression. Side by
side, for scale, it times `ChatRequest.model_dump_json()` on the same request. Timings on a
shared machine are noisy: read the medians, and the ratios measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pydantic
from turnout.router.policy import parse_policy
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatRequest, Message, ToolCall

TARGET_CHARS = 128_000
POLICY = parse_policy(
    {
        "targets": {
            "local": {"runtime": "llama_cpp", "location": "local", "context_window": 65536},
            "box": {"runtime": "openai_compat", "location": "onprem", "base_url": "http://box/v1"},
            "cloud": {"runtime": "anthropic", "location": "cloud", "model": "m", "context_window": 200000},
        },
        "labels": {"customers": {"paths": ["data/customers/**"], "patterns": [r"CUST-\d{6}"]}},
        "redaction": {"enabled": True},
    },
    "bench",
)


def source_files() -> list[tuple[str, str]]:
    root = Path(pydantic.__file__).parent
    return [(p.relative_to(root.parent).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(root.glob("*.py"))]


def agent_request(chars: int = TARGET_CHARS) -> ChatRequest:
    rng = random.Random(3)
    token = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    messages = [
        Message(role="system", content="You are turnout, a careful coding agent. " * 20),
        Message(role="user", content="Make tests/test_models.py pass. The owner is maria.garcia7@acme-corp.com."),
    ]
    used = sum(len(m.content) for m in messages)
    files = source_files()
    files.insert(2, ("data/customers/2026.csv", "id,name,plan\nCUST-004211,acme,gold\n"))
    for i, (path, text) in enumerate(files):
        if used >= chars:
            break
        text = text[: chars - used]
        if i == 3:
            text = f'GITHUB_TOKEN = "{token}"\n' + text
        call = ToolCall(id=f"c{i}", name="read_file", arguments={"path": path})
        messages.append(Message(role="assistant", tool_calls=[call]))
        messages.append(Message(role="tool", name="read_file", tool_call_id=f"c{i}", content=text))
        used += len(text)
    return ChatRequest(messages=messages)


def pathological(chars: int = TARGET_CHARS) -> dict[str, str]:
    return {
        "one letter": "a" * chars,
        "one digit": "1" * chars,
        "digits and spaces": "1 " * (chars // 2),
        "at signs": "a@" * (chars // 2),
        "key= repeated": "key=" * (chars // 4),
        "BEGIN markers": "-----BEGIN PRIVATE KEY-----" * (chars // 27),
        "eyJ repeated": "eyJ." * (chars // 4),
        "://: repeated": "://a:" * (chars // 5),
        "base64 blob": __import__("base64").b64encode(random.Random(5).randbytes(chars * 3 // 4)).decode(),
    }


# CPU time of this process, besides wall time: on a machine shared with other jobs, wall time
# also counts the waits for a core, which say nothing about the code.
CLOCK: Callable[[], float] = time.perf_counter


def median_ms(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = CLOCK()
        fn()
        samples.append(CLOCK() - started)
    return statistics.median(samples) * 1000


def measure(runs: int) -> dict[str, object]:
    request = agent_request()
    chars = sum(len(m.content) for m in request.messages)
    decision = PolicyRouter(POLICY, {}).explain(request)

    cold = median_ms(lambda: PolicyRouter(POLICY, {}).explain(request), runs)
    warm_router = PolicyRouter(POLICY, {})
    warm_router.explain(request)
    warm = median_ms(lambda: warm_router.explain(request), runs)
    new_result = Message(role="tool", name="run_tests", tool_call_id="c99", content="F" * 2000 + "\n1 failed")
    grown = request.model_copy(update={"messages": [*request.messages, new_result]})
    next_turn = median_ms(lambda: warm_router.explain(grown), runs)
    dump = median_ms(request.model_dump_json, runs)

    worst = {}
    for name, text in pathological().items():
        req = ChatRequest(messages=[Message(role="user", content=text)])
        worst[name] = round(median_ms(lambda r=req: PolicyRouter(POLICY, {}).explain(r), max(5, runs // 4)), 2)
    return {
        "request_chars": chars,
        "approx_tokens": chars // 4,
        "decision": {"target": decision.target, "rule": decision.rule, "labels": decision.labels,
                     "kinds": decision.kinds},
        "runs": runs,
        "cold_median_ms": round(cold, 2),
        "warm_median_ms": round(warm, 2),
        "next_turn_median_ms": round(next_turn, 2),
        "model_dump_json_median_ms": round(dump, 2),
        "cold_vs_model_dump_json": round(cold / dump, 2),
        "pathological_cold_median_ms": worst,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                        help="cpu (default): this process's CPU time, steady when the machine is "
                        "shared; wall: perf_counter, which also counts waiting for a core")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    result = measure(args.runs)
    result["clock"] = args.clock
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"request: {result['request_chars']} chars (~{result['approx_tokens']} tokens); "
              f"decision {result['decision']}")
        print(f"clock: {args.clock}")
        print(f"scan + decision, cold (nothing cached): {result['cold_median_ms']} ms median of {args.runs}")
        print(f"scan + decision, same request again:    {result['warm_median_ms']} ms")
        print(f"scan + decision, next turn (+1 result): {result['next_turn_median_ms']} ms")
        print(f"for scale, model_dump_json of the request: {result['model_dump_json_median_ms']} ms "
              f"(cold decision = {result['cold_vs_model_dump_json']}x)")
        print(f"pathological inputs, cold median ms: {result['pathological_cold_median_ms']}")
    return 0 if result["cold_median_ms"] <= 5.0 else 1  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
