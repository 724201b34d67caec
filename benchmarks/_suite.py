"""Running a benchmark suite: its parts in turn, each a command that writes its own page (quality.py, speed.py,
serving.py import this; it is not a benchmark)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Part:
    """One step of a suite: ``python ARGS...`` run from the repository root."""

    name: str
    args: tuple[str, ...]  # what follows the Python interpreter: a script path (from the root) or -m, then options
    page: str  # what it writes
    needs: tuple[str, ...] = ()  # paths (from the root) that must exist first
    made_by: str = ""  # the command that makes them


def add_arguments(ap: argparse.ArgumentParser, parts: Sequence[Part]) -> None:
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="PART",
        choices=[p.name for p in parts],
        help="run only these parts: " + ", ".join(p.name for p in parts),
    )
    ap.add_argument("--dry-run", action="store_true", help="print each part's command and page, run nothing")


def run_parts(
    parts: Sequence[Part],
    *,
    only: Sequence[str] | None = None,
    dry_run: bool = False,
    keep_going: bool = True,
    root: Path = ROOT,
) -> int:
    """Run the parts in order; 0 when every chosen part ran and succeeded, else 1.

    A part whose ``needs`` are missing is skipped with the command that makes them. A failing part stops the
    suite unless ``keep_going`` (parts that do not depend on each other)."""
    chosen = [p for p in parts if not only or p.name in only]
    failed: list[str] = []
    skipped: list[str] = []
    for part in chosen:
        print(f"== {part.name}: python {' '.join(part.args)}  ->  {part.page}", flush=True)
        if dry_run:
            continue
        missing = [n for n in part.needs if not (root / n).exists()]
        if missing:
            print(f"   skipped: needs {', '.join(missing)} (made by: {part.made_by})", flush=True)
            skipped.append(part.name)
            continue
        rc = subprocess.run([sys.executable, *part.args], cwd=root, check=False).returncode
        if rc != 0:
            print(f"   failed: exit {rc}", flush=True)
            failed.append(part.name)
            if not keep_going:
                break
    if dry_run:
        return 0
    done = len(chosen) - len(failed) - len(skipped)
    print(
        f"{done} of {len(chosen)} parts done"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; skipped: {', '.join(skipped)}" if skipped else ""),
        flush=True,
    )
    return 1 if failed or skipped else 0


def suite_main(doc: str, parts: Sequence[Part], argv: list[str] | None = None) -> int:
    """The command line of a suite whose parts do not depend on each other: ``--only``, ``--dry-run``, then every
    part in turn (a failing one does not stop the others). ``doc`` is the suite's module docstring."""
    ap = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.splitlines()[2:]),
    )
    add_arguments(ap, parts)
    args = ap.parse_args(argv)
    return run_parts(parts, only=args.only, dry_run=args.dry_run, keep_going=True, root=ROOT)
