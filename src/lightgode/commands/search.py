"""`lightgode search`: a budgeted, resumable search over a model's training settings, on validation only."""

from __future__ import annotations

import argparse
import json

from lightgode.commands.common import add_data_args, config_from_args, format_metrics, positive_float

SEARCHED = ("lightgode", "directau", "mf-bpr", "lightgcn")


def register(sub) -> None:
    p = sub.add_parser(
        "search",
        help="search a model's training settings on validation (Optuna)",
        description="Search learning rate, dimension, batch size and (lightgode, directau) gamma and "
        "weight decay or (mf-bpr, lightgcn) the L2 weight, within a budget of trials "
        "and/or seconds, with Optuna's seeded TPE sampler and successive-halving "
        "pruning on the validation curve. Every lightgode trial chooses T on validation "
        "after training. The study lives in OUT/study.db (resume with --resume OUT); "
        "OUT/best is the best trial as a run directory, the only run whose test "
        "metrics are computed. See docs/search.md.",
    )
    add_data_args(p)
    s = p.add_argument_group("search")
    s.add_argument(
        "--model", choices=SEARCHED, default=None, help="model whose training is searched (default lightgode)"
    )
    s.add_argument(
        "--config",
        help="JSON or TOML file of the base settings (as lightgode train --config); searched settings replace theirs",
    )
    s.add_argument(
        "--space",
        metavar="FILE",
        help="JSON file of search ranges replacing the defaults: "
        '{"train.lr": {"low": 1e-4, "high": 1e-2, "log": true}, "train.dim": {"choices": '
        '[32, 64]}, "train.weight_decay": null} (null: not searched)',
    )
    s.add_argument(
        "--trials", type=int, help="finished trials over the whole search (default 20 unless --timeout is given)"
    )
    s.add_argument(
        "--timeout",
        type=positive_float,
        metavar="SECONDS",
        help="wall time of the whole search, checked before each trial starts",
    )
    s.add_argument(
        "--epochs",
        type=int,
        metavar="MAX",
        help="maximum epochs of a trial (default 300; early stopping and pruning usually end it sooner)",
    )
    s.add_argument("--patience", type=int, help="early-stopping patience of a trial, in epochs (default 10)")
    s.add_argument(
        "--min-epochs",
        type=int,
        default=5,
        metavar="N",
        help="the pruner's first rung: a trial is first compared with the others after N epochs "
        "(default 5; 0: no pruning)",
    )
    s.add_argument("--seed", type=int, help="seeds the sampler and every trial's training (default 2020)")
    s.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="processes on this machine running trials at once, sharing the study (default 1)",
    )
    s.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage URL (e.g. postgresql://host/db) instead of "
        "OUT/study.db: searches on several machines with the same URL share their trials",
    )
    s.add_argument("--device", help="where trials train: cpu (default), cuda, cuda:N or auto")
    s.add_argument(
        "--threads", type=int, help="torch threads per worker (default: torch's choice, divided among the workers)"
    )
    r = p.add_argument_group("output")
    r.add_argument("--out", metavar="DIR", help="the search directory to write")
    r.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the search in DIR (after a kill, or with a larger "
        "--trials/--timeout): finished trials are kept, a trial cut short is run again",
    )
    r.add_argument("--overwrite", action="store_true", help="replace an existing search directory")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def base_config(args: argparse.Namespace):
    """The base RunConfig from --config and the data/training flags, as ``lightgode train`` builds it."""
    return config_from_args(args)


def _start(what: str, verbose: bool) -> None:
    import logging

    from lightgode.errors import require

    require("optuna", "search", what)
    if not verbose:  # one progress line per trial, not one per epoch
        logging.getLogger("lightgode.core.train").setLevel(logging.WARNING)


def train_with_search(args: argparse.Namespace, cfg) -> int:
    """``lightgode train --search SECONDS --out OUT``: search for SECONDS (study in OUT.search), best run in OUT."""
    from pathlib import Path

    from lightgode.errors import ConfigError

    _start("lightgode train --search", args.verbose)
    from lightgode.runs.search import SearchConfig, search

    if not args.out:
        raise ConfigError("--search needs --out: the best trial is written there as a run directory")
    if args.search <= 0:
        raise ConfigError(f"--search needs a budget of seconds > 0, got {args.search}")
    out = Path(args.out)
    summary = search(
        cfg,
        out.with_name(out.name + ".search"),
        config=SearchConfig(seed=cfg.seed % 2**32),
        budget={"trials": None, "timeout": args.search},
        best_dir=out,
        overwrite=args.overwrite,
        env_data_dir=args.env_data_dir,
        quiet=args.quiet,
    )
    _report(summary)
    return 0


def _report(summary) -> None:
    print(
        f"best of {summary.trials} trials: trial {summary.best_number}, validation "
        f"{summary.best_value:.5f}, settings {json.dumps(summary.best_params)}"
    )
    print(format_metrics(summary.metrics))
    print(f"search in {summary.out} (trials.csv, value_vs_time.png, settings.png); best run in {summary.best_dir}")


def run(args: argparse.Namespace) -> int:
    from lightgode.errors import ConfigError

    _start("lightgode search", args.verbose)
    from lightgode.runs.search import SearchConfig, build_space, load_space_file, search

    budget = {
        k: v
        for k, v in (("trials", args.trials), ("timeout", args.timeout), ("workers", args.workers))
        if v is not None
    }
    if args.resume:
        if args.out and args.out != args.resume:
            raise ConfigError("--resume names the search directory; drop --out or give the same path")
        summary = search(
            None, args.resume, resume=True, budget=budget, env_data_dir=args.env_data_dir, quiet=args.quiet
        )
    else:
        if not args.out:
            raise ConfigError("name the search directory with --out DIR (or continue one with --resume DIR)")
        cfg = base_config(args)
        space = build_space(cfg.model, load_space_file(args.space) if args.space else None)
        if args.timeout is not None and args.trials is None:
            budget["trials"] = None
        config = SearchConfig(seed=cfg.seed % 2**32, min_epochs=args.min_epochs, storage=args.storage)
        summary = search(
            cfg,
            args.out,
            space=space,
            config=config,
            budget=budget,
            overwrite=args.overwrite,
            env_data_dir=args.env_data_dir,
            quiet=args.quiet,
        )
    _report(summary)
    return 0
