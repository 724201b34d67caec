"""`lightgode analyze conv|discrepancy`: the paper's two analyses, from benchmark run directories, with plots.

- ``conv``: graph convolution in training versus at test on one (dataset, seed): MF (mf-bpr), MF with L
  post-training LightGCN layers, LightGCN scored from its layer-0 embeddings (no convolution at test), LightGCN.
  Both MF models and LightGCN share the BPR loss and settings, so only where the convolution happens differs.
- ``discrepancy``: accuracy and embedding discrepancy as the number of post-training layers L (on the mf-bpr
  and directau runs) or the ODE horizon T (on the lightgode run) grows. Discrepancy is the mean over nodes of
  the cosine distance 1 - cos(E(L)_v, E(0)_v) (``discrepancy.cosine_distance``): 0 when propagation kept every
  embedding's direction.

Test metrics here describe, they select nothing; every model's settings were chosen on validation.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "analyze",
        help="the paper's analyses (convolution in training vs at test; embedding "
        "discrepancy) from benchmark runs, with plots",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("analysis", choices=("conv", "discrepancy"))
    p.add_argument(
        "--runs-dir",
        default="runs/benchmark/paper/amazon-beauty",
        help="the benchmark folder of one dataset (default runs/benchmark/paper/amazon-beauty)",
    )
    p.add_argument("--seed", type=int, default=2020, help="which seed's runs (default 2020)")
    p.add_argument("--docs-dir", default="docs/results", help="where the Markdown and PNG go (default docs/results)")
    p.add_argument(
        "--layers", type=int, default=3, help="conv: post-training layers of MF+conv (default 3, LightGCN's L)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightgode.bench.analyses import write_analysis

    command = f"lightgode analyze {args.analysis} --runs-dir {args.runs_dir} --seed {args.seed}" + (
        f" --layers {args.layers}" if args.analysis == "conv" else ""
    )
    page = write_analysis(
        args.analysis, Path(args.runs_dir), args.seed, Path(args.docs_dir), layers=args.layers, command=command
    )
    print(page.summary)
    print(f"wrote {page.markdown} and {page.png}")
    return 0
