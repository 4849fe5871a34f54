"""``validate-experiment [-q] file``: check an experiment description.

Exit status: 0 no errors (warnings, if any, are printed: v0 exited 1 on warnings alone,
which stopped ``validate-experiment && run-experiment`` for a valid file), 1 errors,
2 the file could not be read or parsed.
"""

from __future__ import annotations

import argparse
import sys
import traceback

import yaml

from dioptra.task_engine.issues import IssueSeverity
from dioptra.task_engine.validation import validate


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="validate-experiment",
        description="Validate a Dioptra experiment description (YAML).",
        epilog="Exit status: 0 = no errors (warnings allowed), 1 = errors found,"
        " 2 = the file could not be read or parsed.",
    )
    parser.add_argument("file", type=argparse.FileType("r", encoding="utf-8"))
    parser.add_argument(
        "-q", "--quiet", action="count", default=0,
        help="-q: print no issues; -qq: no traceback either",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with args.file:
            desc = yaml.safe_load(args.file)
        issues = validate(desc)
    except Exception:  # noqa: BLE001 - a YAML error or an unreadable file: exit 2
        if args.quiet < 2:
            traceback.print_exc()
        return 2
    if not args.quiet:
        if issues:
            print("Issues:\n")
            for number, issue in enumerate(issues, 1):
                print(f"{number}. {issue}\n")
        else:
            print("No issues!")
    return 1 if any(i.severity is IssueSeverity.ERROR for i in issues) else 0


if __name__ == "__main__":
    sys.exit(main())
