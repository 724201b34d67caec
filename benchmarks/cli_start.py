"""Seconds from starting ``lightgode --help`` (and ``lightgode COMMAND --help`` for every command) to its exit.

Usage: .venv/bin/python benchmarks/cli_start.py [--repeats 5]
Each command line runs as a fresh process through the installed ``lightgode`` script, in alternation with the
others so that all share the machine's load; the page gives the median and the slowest of the repeats and what a
bare ``python -c pass`` costs on the same machine. Target (issue 23): under 0.5 s each. Writes
docs/results/cli_start.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--doc", default=str(ROOT / "docs" / "results" / "cli_start.md"))
    args = p.parse_args()
    from lightgode.cli import COMMANDS

    exe = shutil.which("lightgode", path=str(Path(sys.executable).parent)) or shutil.which("lightgode")
    lines = {"python -c pass": [sys.executable, "-c", "pass"], "lightgode --help": [exe, "--help"]}
    lines |= {f"lightgode {c} --help": [exe, c, "--help"] for c in COMMANDS}
    times: dict[str, list[float]] = {k: [] for k in lines}
    for cmd in lines.values():
        timed(cmd)  # warm the file cache
    for _ in range(args.repeats):
        for name, cmd in lines.items():
            times[name].append(timed(cmd))
    rows = []
    for name, v in times.items():
        v = sorted(v)
        rows.append(f"| `{name}` | {v[len(v) // 2]:.3f} | {v[-1]:.3f} |")
        print(f"{name:40s} median {v[len(v) // 2]:.3f} s, slowest {v[-1]:.3f} s")
    worst = max(sorted(v)[len(v) // 2] for k, v in times.items() if k != "python -c pass")
    text = "\n".join(
        [
            "# Start-up time of the command line",
            "",
            f"`.venv/bin/python benchmarks/cli_start.py --repeats {args.repeats}` on {platform.machine()} "
            f"({platform.processor() or 'unknown CPU'}), {date.today().isoformat()}, Python {platform.python_version()}.",
            "Each line is a fresh process, timed in alternation with the others; target: under 0.5 s. Parsing imports",
            "no numerical library (`lightgode.names` holds the choices; each command loads the library in its `run`),",
            "which tests/test_layout.py checks.",
            "",
            "| command | median s | slowest s |",
            "|---|---|---|",
            *rows,
            "",
            f"Slowest median of a lightgode command: {worst:.3f} s.",
            "",
        ]
    )
    out = Path(args.doc)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
