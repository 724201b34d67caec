"""Peak memory of `lightgode train` on a CSV with one very long id: refused by default, accepted when allowed.

    python benchmarks/studies/long_ids.py [--doc docs/results/long_ids.md] [--lengths 1000000 4000000 16000000]

Each file has 100 rows (``user,item``) with one user id of LENGTH characters. Every measurement is a fresh
Python process that runs ``lightgode.cli.main`` and reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``): the whole CLI (torch, pandas) and its data, not the reader
alone. Rows: a normal file (short ids) for the baseline; the 1M-character id refused by the default
``--max-id-length`` (256); the same file accepted (``--max-id-length`` = LENGTH, ``--kcore 0 --epochs 1``,
run written to a temporary folder) for each LENGTH, so that the growth per id character shows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import json, resource, sys
from lightgode.cli import main
rc = main(sys.argv[2:])
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": rc, "peak_mb": peak_kb / 1024}, fh)
"""


def write_csv(path: Path, length: int, rows: int = 100) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("user,item\n")
        for r in range(rows):
            fh.write(("x" * length if r == rows // 2 else f"u{r}") + f",i{r % 7}\n")
    return path


def measure(args: list[str], workdir: Path) -> dict:
    """Exit status, peak memory (MB) and the last stderr line of ``lightgode ARGS`` in a fresh process."""
    out = workdir / "measure.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), *args], env=env, capture_output=True, text=True)
    if not out.exists():
        raise SystemExit(f"measurement failed: {proc.stderr.strip().splitlines()[-1:]}")
    result = json.loads(out.read_text())
    out.unlink()
    lines = proc.stderr.strip().splitlines()
    result["message"] = lines[-1][:160] if lines else ""
    return result


def machine() -> str:
    mem = ""
    try:
        kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{platform.platform()}, {os.cpu_count()} CPUs{mem}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=[1_000_000, 4_000_000, 16_000_000])
    ap.add_argument("--doc", default=str(ROOT / "docs" / "results" / "long_ids.md"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        train = ["train", "--kcore", "0", "--epochs", "1", "--quiet"]
        normal = write_csv(tmp / "normal.csv", 5)
        rows.append(
            (
                "normal file (ids of <= 5 characters), accepted",
                5,
                measure([*train, "--data", str(normal), "--out", str(tmp / "run0")], tmp),
            )
        )
        first = write_csv(tmp / "long.csv", args.lengths[0])
        rows.append(
            (
                f"one id of {args.lengths[0]:,} characters, default limit: refused",
                args.lengths[0],
                measure([*train, "--data", str(first)], tmp),
            )
        )
        for k, length in enumerate(args.lengths):
            f = write_csv(tmp / f"long{k}.csv", length)
            rows.append(
                (
                    f"one id of {length:,} characters, --max-id-length {length}: accepted",
                    length,
                    measure(
                        [*train, "--data", str(f), "--max-id-length", str(length), "--out", str(tmp / f"run{k + 1}")],
                        tmp,
                    ),
                )
            )
    for what, _, r in rows:
        print(f"{r['peak_mb']:8.0f} MB  exit {r['rc']}  {what}  {r['message']}")
    accepted = [(n, r["peak_mb"]) for what, n, r in rows if "accepted" in what and n > 5]
    growth = ""
    if len(accepted) >= 2:
        (n0, m0), (n1, m1) = accepted[0], accepted[-1]
        growth = (
            f"\nFrom {n0:,} to {n1:,} id characters the peak grows by {m1 - m0:.0f} MB: "
            f"{(m1 - m0) * 2**20 / (n1 - n0):.1f} bytes per added id character (the id is held a few "
            f"times: file bytes, parsed column, Python str, written split).\n"
        )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(f"| {what} | {r['rc']} | {r['peak_mb']:.0f} |" for what, _, r in rows)
    refused = next((r["message"] for what, _, r in rows if "refused" in what), "")
    text = f"""# Long ids: peak memory

Written by `python benchmarks/studies/long_ids.py` on {now}; machine: {machine()}.

A CSV of 100 rows (`user,item`) with one user id of N characters, read by `lightgode train --kcore 0 --epochs 1`
(`--out` a temporary folder when accepted). Peak resident memory of the whole process (torch and pandas
included), from `resource.getrusage` in a fresh process per row. Before ids were stored as Python strings,
the 1M-character file peaked at 1.7 GB (fixed-width numpy strings: every row cost as much as the longest id).

| file | exit | peak MB |
|---|---|---|
{table}
{growth}
The refusal (exit 2, one line): `{refused}`
"""
    Path(args.doc).write_text(text, encoding="utf-8")
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
