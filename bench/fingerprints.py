"""Content fingerprints: the router's decision on a 32k-token request with them on (target: <= 5 ms
median), how long indexing a repository takes, and whether labelled content is found.

    .venv/bin/python -m turnout.bench.fingerprints [--runs 41] [--rows 2000] [--json]

A repository is made in a temporary folder: `data/customers/*.csv` (labelled `customers`,
`--rows` synthetic rows, about 60 bytes each) and `src/` (unlabelled: the installed pydantic's
sources, which the index subtracts). The request is `bench/overhead.py`'s late-in-a-task agent
request (about 128 KB: source files read through tools, a token, an email), plus a test's output
that prints three rows of the labelled file under no name. Every run sends a request the
router has not seen (each message gets a run number), so nothing is cached: the cold case.
It is timed with the fingerprints on (the repository's router) and off (the same policy with
no repository to index), in CPU time of this process by default (`--clock wall` for wall time).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pydantic
from turnout.bench.overhead import POLICY, agent_request
from turnout.router.fingerprints import REFRESH_SECONDS
from turnout.router.router import PolicyRouter
from turnout.runtimes.base import ChatRequest, Message

FIRST = ["Maria", "Jonas", "Aiko", "Fatima", "Liam", "Chen", "Olga", "Kwame", "Sofia", "Ravi"]
LAST = ["Garcia", "Lindqvist", "Tanaka", "Haddad", "Murphy", "Wei", "Ivanova", "Mensah", "Rossi"]


def make_repo(root: Path, rows: int) -> list[str]:
    rng = random.Random(7)
    lines = ["id,name,email,phone,plan"]
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        lines.append(f"CUST-{i:06d},{first} {last},{first.lower()}.{last.lower()}{i}@mail{i % 97}.net,"
                     f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)},{rng.choice(['gold', 'free'])}")
    (root / "data" / "customers").mkdir(parents=True)
    (root / "data" / "customers" / "2026.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = root / "src"
    shutil.copytree(Path(pydantic.__file__).parent, src / "pydantic", ignore=shutil.ignore_patterns("*.pyc"))
    return lines


CLOCK: Callable[[], float] = time.process_time


def timed(fn: Callable[[int], object], runs: int) -> float:
    samples = []
    for i in range(runs):
        started = CLOCK()
        fn(i)
        samples.append(CLOCK() - started)
    return statistics.median(samples) * 1000


def varied(request: ChatRequest, run: int) -> ChatRequest:
    """The request with every message changed, so no cache holds any of it."""
    return request.model_copy(update={"messages": [
        m.model_copy(update={"content": f"{m.content}\n[run {run}]"}) for m in request.messages
    ]})


def measure(runs: int, rows: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        lines = make_repo(repo, rows)
        started = time.perf_counter()
        router = PolicyRouter(POLICY, {}, repo=repo)
        index_seconds = time.perf_counter() - started
        stats = router.content.stats
        printed = "\n".join(lines[rows // 2: rows // 2 + 3])
        base = agent_request()
        # No read of the labelled file by its name: only its content, printed by a test, says
        # where the rows come from. (The same request without them must stay unlabelled.)
        named = {c.id for m in base.messages for c in m.tool_calls if "customers" in str(c.arguments)}
        base = ChatRequest(messages=[m for m in base.messages
                                     if not (named & {c.id for c in m.tool_calls}) and m.tool_call_id not in named])
        request = base.model_copy(update={"messages": [
            *base.messages,
            Message(role="tool", name="run_tests", tool_call_id="t1",
                    content=f"----- Captured stdout call -----\n{printed}\nFAILED tests/test_x.py::test_load"),
        ]})
        chars = sum(len(m.content) for m in request.messages)
        decision = router.explain(varied(request, -1))
        found = sorted({r for r in decision.reasons if "its content" in r})
        # The varied copies are made before the clock starts: copying 128 KB of messages is the
        # benchmark's cost, not the router's.
        fresh = [varied(request, i) for i in range(2 * runs)]
        on = timed(lambda i: PolicyRouter.explain(router, fresh[i]), runs)
        off_router = PolicyRouter(POLICY, {})
        off = timed(lambda i: off_router.explain(fresh[runs + i]), runs)
        # Without the printed rows the customers label must not appear: the sources the request
        # shows share their boilerplate with nothing labelled (the index subtracted it).
        quiet = PolicyRouter(POLICY, {}, repo=repo).explain(varied(base, -2))
        # The look for new or changed labelled files (a walk with a stat per file), which the
        # router takes at most every few seconds, between model calls.
        refresh = timed(lambda i: router.content.refresh(force=True), 5)
    return {
        "request_chars": chars,
        "approx_tokens": chars // 4,
        "runs": runs,
        "labelled_rows": rows,
        "index": {"seconds": round(index_seconds, 3), "labelled_files": stats.labelled_files,
                  "unlabelled_files": stats.unlabelled_files, "fingerprints": stats.fingerprints},
        "decision": {"target": decision.target, "rule": decision.rule, "content_found": found},
        "unlabelled_request_labels": quiet.labels,
        "refresh_median_ms": round(refresh, 2),
        "cold_median_ms_fingerprints_on": round(on, 2),
        "cold_median_ms_fingerprints_off": round(off, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=41)
    parser.add_argument("--rows", type=int, default=2000, help="rows of the labelled CSV")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    result = measure(args.runs, args.rows)
    result["clock"] = args.clock
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        index = result["index"]
        print(f"request: {result['request_chars']} chars (~{result['approx_tokens']} tokens), "
              f"clock {args.clock}, {args.runs} runs")
        print(f"index: {index}")  # type: ignore[index]
        print(f"decision: {result['decision']}")
        print(f"labels of the same request without the printed rows: {result['unlabelled_request_labels']}")
        print(f"cold decision, fingerprints on:  {result['cold_median_ms_fingerprints_on']} ms median")
        print(f"cold decision, fingerprints off: {result['cold_median_ms_fingerprints_off']} ms median")
        print(f"looking for changed labelled files (every {REFRESH_SECONDS:g} s at most): "
              f"{result['refresh_median_ms']} ms")
    return 0 if result["cold_median_ms_fingerprints_on"] <= 5.0 else 1  # type: ignore[operator]


if __name__ == "__main__":
    sys.exit(main())
