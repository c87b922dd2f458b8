"""wordcount: lines, words and characters of files, with a total line for several files.

    python cli.py FILE...
"""

import argparse
import sys

from counting import Counts, count_text, format_counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wordcount", description=__doc__.splitlines()[1])
    parser.add_argument("files", nargs="+", help="files to count")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print a line per file (and a total for several); exit status 1 if a file was unreadable."""
    args = build_parser().parse_args(argv)
    total = Counts(0, 0, 0)
    status = 0
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                counts = count_text(f.read())
        except OSError as e:
            print(f"wordcount: {path}: {e.strerror}", file=sys.stderr)
            status = 1
            continue
        total += counts
        print(format_counts(counts, path))
    if len(args.files) > 1:
        print(format_counts(total, "total"))
    return status


if __name__ == "__main__":
    sys.exit(main())
