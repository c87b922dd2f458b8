"""Detection benchmark: the scanner's recall and precision on the shipped labelled corpus.

    .venv/bin/python bench/detection.py [--json] [--show-misses] [--wild]

Counts are per finding kind within each item: an expected kind the scanner found is a true
positive, an expected kind it missed a false negative, and any other finding (on a hard
negative, or an extra one on a positive item) a false positive. Recall is reported for
known-format secrets and for personal data separately; precision over everything.

The corpus was written by the people who wrote the scanner, so `--wild` adds an outside check:
it scans the Python and Markdown sources of large installed packages (pydantic, openai,
anthropic, httpx, ...), where nearly every finding is a false positive (documentation examples,
test fixtures), and reports findings per MB by kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path

from turnout.router.policy import Policy
from turnout.router.scan import Scanner

CORPUS = Path(__file__).resolve().parent / "data" / "detection_corpus.jsonl"


def evaluate(corpus: Path = CORPUS) -> dict[str, object]:
    scanner = Scanner(Policy())
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    misses: list[dict[str, object]] = []
    items = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    for item in items:
        expected = Counter(item["expected"])
        found = Counter(f.kind for f in scanner.scan_uncached(item["text"]))
        group = item["group"]
        for kind in expected | found:
            hit = min(expected[kind], found[kind])
            tp[group] += hit
            fn[group] += expected[kind] - hit
            fp[group] += found[kind] - hit
        if expected != found:
            misses.append({"id": item["id"], "expected": sorted(expected.elements()),
                           "found": sorted(found.elements())})

    def ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 1.0

    all_tp, all_fp = sum(tp.values()), sum(fp.values())
    return {
        "items": len(items),
        "secret_recall": ratio(tp["secret"], tp["secret"] + fn["secret"]),
        "pii_recall": ratio(tp["pii"], tp["pii"] + fn["pii"]),
        "precision": ratio(all_tp, all_tp + all_fp),
        "true_positives": dict(tp),
        "false_negatives": dict(fn),
        "false_positives": dict(fp),
        "misses": misses,
    }


WILD_PACKAGES = ("pydantic", "openai", "anthropic", "httpx", "langgraph", "mcp", "jsonschema",
                 "tenacity", "structlog", "pip", "setuptools")


def wild() -> dict[str, object]:
    scanner = Scanner(Policy())
    size = 0
    kinds: Counter[str] = Counter()
    for package in WILD_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for path in sorted([*Path(root).rglob("*.py"), *Path(root).rglob("*.md")]):
                text = path.read_text(encoding="utf-8", errors="replace")
                size += len(text)
                kinds.update(f.kind for f in scanner.scan_uncached(text))
    mb = size / 1e6
    return {"megabytes": round(mb, 1), "findings": sum(kinds.values()),
            "findings_per_mb": round(sum(kinds.values()) / mb, 2) if mb else 0.0, "by_kind": dict(kinds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--wild", action="store_true", help="also scan installed packages' sources")
    args = parser.parse_args()
    result = evaluate()
    if args.wild:
        result["wild"] = wild()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"corpus: {result['items']} items ({CORPUS.name})")
        print(f"recall, known-format secrets: {result['secret_recall']:.3f}")
        print(f"recall, personal data:        {result['pii_recall']:.3f}")
        print(f"precision, all findings:      {result['precision']:.3f}")
        print(f"false positives by group: {result['false_positives']}")
        if args.wild:
            w = result["wild"]
            print(f"wild: {w['findings']} findings in {w['megabytes']} MB of installed packages' "  # type: ignore[index]
                  f"sources ({w['findings_per_mb']}/MB): {w['by_kind']}")  # type: ignore[index]
        if args.show_misses:
            for miss in result["misses"]:  # type: ignore[attr-defined]
                print(f"  {miss}")
    ok = result["secret_recall"] >= 0.95 and result["precision"] >= 0.90  # type: ignore[operator]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
