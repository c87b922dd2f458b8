"""Detection benchmark: the scanner's recall and precision on the shipped labelled corpus.

    .venv/bin/python bench/detection.py [--json] [--show-misses] [--wild] [--detect-secrets]

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
import tempfile
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


def side_by_side(corpus: Path = CORPUS) -> dict[str, object]:
    """turnout's scanner and detect-secrets (Yelp's, default plugins and filters) on the same
    items, by item, since the two name their finding kinds differently: a positive item is found
    when a tool reports anything in it, a hard negative is a false alarm when it reports
    anything. Per family (the kind the item holds), recall for each tool; precision over all."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    scanner = Scanner(Policy())
    items = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines() if line]
    found: dict[str, Counter[str]] = {"turnout": Counter(), "detect-secrets": Counter()}
    positives: Counter[str] = Counter()
    alarms: Counter[str] = Counter()  # tool -> items it flagged
    # detect-secrets does not look for personal data: its recall on secrets alone is the fair one.
    secrets_found: Counter[str] = Counter()
    secret_items = 0
    with default_settings(), tempfile.TemporaryDirectory() as folder:
        for item in items:
            # detect-secrets scans files; the file name says nothing (no extension, no "test").
            path = Path(folder) / "item"
            path.write_text(item["text"], encoding="utf-8")
            hits = {"turnout": bool(scanner.scan_uncached(item["text"])),
                    "detect-secrets": bool(list(scan_file(str(path))))}
            family = item["expected"][0] if item["expected"] else "negative"
            for tool, hit in hits.items():
                alarms[tool] += hit
                if family != "negative":
                    found[tool][family] += hit
                    secrets_found[tool] += hit and item["group"] == "secret"
            if family != "negative":
                positives[family] += 1
                secret_items += item["group"] == "secret"
    total = sum(positives.values())
    tools = list(found)
    return {
        "items": len(items), "positive_items": total, "negative_items": len(items) - total,
        "by_family": {family: {"items": count, **{tool: round(found[tool][family] / count, 3) for tool in tools}}
                      for family, count in sorted(positives.items())},
        "recall": {tool: round(sum(found[tool].values()) / total, 3) for tool in tools},
        "recall_secrets_only": {tool: round(secrets_found[tool] / secret_items, 3) for tool in tools},
        "precision": {tool: round(sum(found[tool].values()) / alarms[tool], 3) if alarms[tool] else 1.0
                      for tool in tools},
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
    parser.add_argument("--detect-secrets", action="store_true",
                        help="also run detect-secrets (pip install detect-secrets) on the same items, "
                        "side by side by family")
    args = parser.parse_args()
    result = evaluate()
    if args.wild:
        result["wild"] = wild()
    if args.detect_secrets:
        result["side_by_side"] = side_by_side()
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
        if args.detect_secrets:
            both = result["side_by_side"]
            print(f"by item, {both['positive_items']} positive and {both['negative_items']} negative "  # type: ignore[index]
                  "(found: the tool reports anything in the item)")
            print(f"  {'family':<28} {'items':>5} {'turnout':>8} {'detect-secrets':>15}")
            for family, row in both["by_family"].items():  # type: ignore[index]
                print(f"  {family:<28} {row['items']:>5} {row['turnout']:>8.3f} {row['detect-secrets']:>15.3f}")
            for what in ("recall", "recall_secrets_only", "precision"):
                row = both[what]  # type: ignore[index]
                print(f"  {what:<28} {'':>5} {row['turnout']:>8.3f} {row['detect-secrets']:>15.3f}")
        if args.show_misses:
            for miss in result["misses"]:  # type: ignore[attr-defined]
                print(f"  {miss}")
    ok = result["secret_recall"] >= 0.95 and result["precision"] >= 0.90  # type: ignore[operator]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
