"""`lightgode info RUN_DIR`: dataset statistics, settings and metrics of a run."""

from __future__ import annotations

import argparse
import json

from lightgode.commands.common import format_metrics


def register(sub) -> None:
    p = sub.add_parser("info", help="show a run's data, settings and metrics")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--json", action="store_true", help="print everything as one JSON object")
    p.set_defaults(func=run)


def _number(value, spec: str) -> str:
    """A train.json figure formatted, or "?" when the file holds something else there."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "?"


def run(args: argparse.Namespace) -> int:
    from lightgode.runs.store import load_run

    r = load_run(args.run_dir)
    if args.json:
        print(json.dumps({"config": r.config, "train": r.info, "metrics": r.metrics}, indent=2))
        return 0
    cfg, info = r.config, r.info
    print(f"run        {r.path}")
    print(f"model      {cfg.get('model')}  (seed {cfg.get('seed')})")
    test = f"  test={cfg['data']['test']}" if cfg["data"].get("test") else ""
    print(f"data       {cfg['data']['data']}{test}  split={cfg['data']['split']} kcore={cfg['data']['kcore']}")
    print(
        f"size       {r.split.train.n_users} users, {r.split.train.n_items} items, "
        f"{len(r.split.train)} train / {len(r.split.valid)} valid / {len(r.split.test)} test"
    )
    print(f"training   {json.dumps(cfg['train'])}")
    print(f"ode        {json.dumps(cfg['ode'])}")
    if info:
        seconds = info.get("seconds")
        total = seconds.get("total") if isinstance(seconds, dict) else None
        print(
            f"best epoch {info.get('best_epoch')} of {info.get('epochs_run')}, "
            f"{_number(info.get('seconds_per_epoch'), '.2f')} s/epoch, {_number(total, '.1f')} s in all, "
            f"peak {_number(info.get('peak_rss_mb'), '.0f')} MiB"
        )
    print(format_metrics(r.metrics))
    return 0
