"""`lightgode benchmark`: every model side by side on one protocol; writes docs/results/benchmark.md and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    from lightgode.names import BENCH_MODELS as ALL_MODELS
    from lightgode.names import PROTOCOLS

    p = sub.add_parser(
        "benchmark",
        help="run the side-by-side benchmark (resumable) and write its report",
        description="Train and evaluate each model on each dataset and seed through the same "
        "split, evaluation and run directory (<out-dir>/<protocol>/<dataset>/<model>/"
        "seed<N>). Complete runs are skipped and interrupted ones continue from their "
        "checkpoint, so the command resumes where it stopped. Then writes the report "
        "(Markdown table, CSV, PNG plots) from every complete run of the protocol.",
    )
    p.add_argument("--datasets", nargs="+", default=["amazon-beauty"], help="named datasets (default amazon-beauty)")
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), help=f"models (default: {' '.join(ALL_MODELS)})")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, 2020, 2021, ... (default 3)")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="paper",
        help="paper: 5-core, per-user random 8:1:1; lightgcn-gowalla: LightGCN's fixed Gowalla split",
    )
    p.add_argument("--out-dir", default="runs/benchmark", help="where run directories go (default runs/benchmark)")
    p.add_argument("--docs-dir", default="docs/results", help="where the report goes (default docs/results)")
    p.add_argument("--data-dir", help="folder with the named datasets")
    p.add_argument(
        "--max-train-minutes",
        type=float,
        default=20.0,
        help="wall-time cap of mf-bpr and lightgcn training per run (default 20; 0: none)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run (default 1)")
    p.add_argument(
        "--device",
        default="cpu",
        help="where mf-bpr, lightgcn, directau and lightgode train and validate: cpu (default), cuda, "
        "cuda:N or auto; a run keeps its device in train.json and the report marks GPU rows",
    )
    p.add_argument(
        "--grid",
        nargs="+",
        default=[],
        metavar="FIELD=V1,V2",
        help="trained settings to search on validation, one run per point: lr=5e-4,1e-3,2e-3 "
        "(BPR models, DirectAU, LightGODE), reg=... (mf-bpr, lightgcn), gamma=... (directau, "
        "lightgode); each seed keeps its best validation point",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="lightgcn-gowalla: also retrain each run chosen on validation on the whole training file "
        "for the epochs early stopping chose (rows '<model> (refit)'), comparable with published "
        "figures that train on all of it",
    )
    p.add_argument(
        "--no-tune-t",
        dest="tune_t",
        action="store_false",
        help="skip the LightGODE rows with T chosen on validation (default: the paper's T and, beside it, "
        "T searched on validation with E0 fixed, rows 'lightgode (T on validation)')",
    )
    p.add_argument("--quick", action="store_true", help="3 epochs and rank 8: checks the machinery only")
    p.add_argument("--report-only", action="store_true", help="write the report from existing runs, train nothing")
    p.add_argument(
        "--drop-recorded",
        dest="keep_recorded",
        action="store_false",
        help="write the report from the runs on disk only (default: rows already in <docs-dir>/"
        "benchmark.csv whose run directory is gone are kept, marked as recorded, and such a run "
        "is not trained again while its recorded settings are the benchmark's)",
    )
    p.add_argument(
        "--retrain-recorded",
        action="store_true",
        help="train again the runs whose directory is gone even when benchmark.csv records them with "
        "the same settings (default: a recorded row counts as a complete run, e.g. as a grid point; --quick never "
        "counts one)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.bench import BenchmarkConfig, read_recorded, run_benchmark, write_report
    from lightgode.errors import ConfigError

    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    grid = tuple(parse_grid(item) for item in args.grid)
    bench = BenchmarkConfig(
        datasets=tuple(args.datasets),
        models=tuple(dict.fromkeys(args.models)),
        seeds=tuple(2020 + i for i in range(args.seeds)),
        protocol=args.protocol,
        out_dir=Path(args.out_dir),
        data_dir=args.data_dir or args.env_data_dir,
        max_train_minutes=args.max_train_minutes,
        threads=args.threads,
        quick=args.quick,
        device=args.device,
        grid=grid,
        refit=args.refit,
        tune_t=args.tune_t,
    )
    from lightgode.atomic import check_target

    # both folders are added to and rewritten by design (runs resume, the report is regenerated); one that
    # cannot be written (under a file, read-only) fails now, not after hours of training
    for folder in (args.docs_dir,) if args.report_only else (args.out_dir, args.docs_dir):
        check_target(folder, overwrite=True, kind="dir")
    if not args.report_only:  # a device this machine lacks fails now, not in every run
        from lightgode.core.train import resolve_device

        resolve_device(bench.device)
    # a CSV the report could not merge fails now, not after hours of training
    recorded = read_recorded(Path(args.docs_dir) / "benchmark.csv") if args.keep_recorded else []
    if not args.report_only:
        progress = run_benchmark(
            bench,
            report=lambda msg: print(msg, flush=True),
            recorded=[] if args.retrain_recorded or args.quick else recorded,
        )
        print(
            f"{len(progress.done)} runs done, {len(progress.skipped)} already complete, "
            f"{len(progress.recorded)} recorded"
        )
    command = (
        f"lightgode benchmark --protocol {args.protocol} --datasets {' '.join(args.datasets)} "
        f"--models {' '.join(bench.models)} --seeds {args.seeds} --max-train-minutes {args.max_train_minutes:g}"
        f"{' --grid ' + ' '.join(args.grid) if args.grid else ''}{' --refit' if args.refit else ''}"
        f"{'' if args.tune_t else ' --no-tune-t'}"
        f"{' --quick' if args.quick else ''}"
    )
    if args.report_only:  # the runs were made by other invocations: say so rather than name one that made none
        command = "lightgode benchmark --report-only"
    paths = write_report(Path(args.out_dir), Path(args.docs_dir), command, keep_recorded=args.keep_recorded)
    for path in paths:
        print(f"wrote {path}")
    return 0


def parse_grid(item: str) -> tuple[str, tuple[float, ...]]:
    """'lr=5e-4,1e-3' -> ('lr', (0.0005, 0.001)); a malformed item is a one-line ConfigError."""
    from lightgode.errors import ConfigError

    key, sep, values = item.partition("=")
    try:
        parsed = tuple(float(v) for v in values.split(","))
    except ValueError:
        parsed = ()
    if not sep or not key or not parsed:
        raise ConfigError(f"--grid takes FIELD=V1,V2,... (e.g. lr=5e-4,1e-3), got {item!r}")
    return key.strip(), parsed
