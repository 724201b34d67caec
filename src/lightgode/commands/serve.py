"""`lightgode serve RUN_DIR`: the HTTP API (FastAPI + uvicorn), on localhost unless told otherwise."""

from __future__ import annotations

import argparse
import json
import os
import sys

from lightgode.commands.common import add_ode_args, positive_float
from lightgode.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve recommendations over HTTP",
        description="GET /health, GET /users/{id}/recommendations?k=, POST /recommendations "
        '{"items": [...], "k": ...} for a new user, GET /items/{id}/similar?k=. '
        "The OpenAPI schema is at /openapi.json, its docs page (no internet needed) "
        "at /docs.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument(
        "--index",
        choices=("exact", "flat", "hnsw", "ivf"),
        default="exact",
        help="item search: exact matrix product (default) or a faiss index",
    )
    p.add_argument("--max-k", type=int, default=1000, help="larger k is capped to this (default 1000)")
    p.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="larger bodies get 413 (default 65536)")
    p.add_argument(
        "--body-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="a request body not received in full within this time gets 408 and the connection is closed (default 10)",
    )
    p.add_argument(
        "--foldin-init",
        choices=("zero", "mean", "norm_mean"),
        default=None,
        help="initial value of new users (default: the library's)",
    )
    add_ode_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.errors import require

    for module in ("fastapi", "uvicorn"):
        require(module, "serve", "lightgode serve")
    if args.index != "exact":
        require("faiss", "serve", f"lightgode serve --index {args.index}")
    import torch
    import uvicorn

    from lightgode.commands.common import ode_from_args
    from lightgode.runs.store import load_run, run_config
    from lightgode.serving.foldin import FoldInConfig
    from lightgode.serving.http import ENV_OPTIONS, ENV_RUN, ServeConfig, create_app
    from lightgode.serving.index import IndexConfig
    from lightgode.serving.recommender import Recommender

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    serve_cfg = ServeConfig(max_k=args.max_k, max_body_bytes=args.max_body_bytes, body_timeout=args.body_timeout)
    foldin = FoldInConfig(**({"init": args.foldin_init} if args.foldin_init else {}))
    index = None if args.index == "exact" else IndexConfig(kind=args.index)
    ode = ode_from_args(args, run_config(load_run(args.run_dir)).ode)
    if ode is not None and args.workers > 1:
        raise ConfigError("--t/--solver/--steps go with --workers 1")
    torch.set_num_threads(1)
    rec = Recommender.load(args.run_dir, ode, foldin=foldin, index=index)  # fails here, before binding, if bad
    if index is not None and args.workers == 1:
        rec.item_index()  # build before the first request
    print(
        f"serving {args.run_dir} ({rec.n_users} users, {rec.n_items} items) on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    if args.workers == 1:
        uvicorn.run(create_app(rec, serve_cfg), host=args.host, port=args.port, log_level="warning", access_log=False)
        return 0
    os.environ[ENV_RUN] = os.path.abspath(args.run_dir)
    os.environ[ENV_OPTIONS] = json.dumps(
        {
            "serve": {"max_k": args.max_k, "max_body_bytes": args.max_body_bytes, "body_timeout": args.body_timeout},
            "foldin": {"init": foldin.init, "item_degree": foldin.item_degree},
            "index": {"kind": args.index} if index else None,
        }
    )
    del rec
    uvicorn.run(
        "lightgode.serving.http:app_from_environ",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )
    return 0
