"""Post-training convolution on a benchmark MF-BPR run, in several forms, against the run's LightGCN figure.

Usage: .venv/bin/python benchmarks/studies/conv_variants.py RUNS_DIR [--seed 2020] [--lightgcn-ndcg 0.0564]
                                                    [--docs-dir docs]

RUNS_DIR is a benchmark dataset folder (``runs/benchmark/paper/amazon-toys-games``) holding ``mf-bpr/seed<N>``.
The paper puts MF with convolution at test at 95.9% (Beauty) and 93.8% (Toys) of LightGCN's NDCG@20; our
``lightgode analyze conv`` finds 75-81%. This script asks whether another form of the convolution closes the gap:
the layer mean (E0 + Â E0 + ... + Â^L E0) / (L + 1) (the analysis's form), the last layer Â^L E0 alone, the layer
mean of L2-normalised rows, and LightGODE's one Euler step (1 + T) E0 + T Â E0, each on the same trained E0.
Validation and test NDCG@20 per variant; ``--lightgcn-ndcg`` (the LightGCN test NDCG@20 of the same seed, from
docs/results/benchmark.csv when omitted) gives the percentage. Writes docs/results/analysis_conv_variants_<dataset>.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
from pathlib import Path

import torch

from lightgode.atomic import write_text
from lightgode.bench import read_recorded
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.ode import euler_one_step
from lightgode.models.base import exclude_csr
from lightgode.models.lightgcn import layer_mean
from lightgode.runs.store import load_model, load_run


def variants(E0: torch.Tensor, A: torch.Tensor, max_layers: int) -> dict[str, torch.Tensor]:
    """Named post-training embeddings of E0 (users and items stacked) over the normalised adjacency A."""
    out = {"MF (BPR), no convolution": E0}
    unit = torch.nn.functional.normalize(E0, dim=1)
    last = E0
    for L in range(1, max_layers + 1):
        last = A @ last
        out[f"layer mean, L = {L}"] = layer_mean(A, E0, L)
        out[f"last layer only, L = {L}"] = last
        out[f"layer mean of unit rows, L = {L}"] = layer_mean(A, unit, L)
    for T in (0.5, 1.0, 2.0, 4.0):
        out[f"one Euler step, T = {T:g}"] = euler_one_step(A, E0, T)
    return out


def lightgcn_from_csv(csv_path: Path, dataset: str, seed: int) -> float | None:
    return next(
        (
            r["test_ndcg@20"]
            for r in read_recorded(csv_path)
            if (r["protocol"], r["dataset"], r["model"], r["seed"], r["variant"])
            == ("paper", dataset, "lightgcn", seed, "")
        ),
        None,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs_dir", type=Path)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--lightgcn-ndcg", type=float)
    ap.add_argument("--docs-dir", type=Path, default=Path("docs/results"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    dataset = args.runs_dir.name
    run = load_run(args.runs_dir / "mf-bpr" / f"seed{args.seed}")
    mf = load_model(run)
    split, tr = run.split, run.split.train
    n_users = len(tr.user_ids)
    A = to_torch(normalized_adjacency(n_users, len(tr.item_ids), tr.users, tr.items))
    gcn = args.lightgcn_ndcg or lightgcn_from_csv(args.docs_dir / "benchmark.csv", dataset, args.seed)
    cfg = EvalConfig(ks=(20,))
    valid_rel, test_rel = split.valid.to_csr(), split.test.to_csr()
    valid_ex, test_ex = exclude_csr([split.train]), exclude_csr([split.train, split.valid])
    rows = []
    with torch.no_grad():
        for name, E in variants(mf.E0_.detach().to(torch.float32), A, args.layers).items():
            score = embedding_scorer(E[:n_users].contiguous(), E[n_users:].contiguous())
            valid = full_ranking(score, valid_rel, valid_ex, cfg)["ndcg@20"]
            test = full_ranking(score, test_rel, test_ex, cfg)["ndcg@20"]
            share = f"{100 * test / gcn:.1f}%" if gcn else "-"
            rows.append(f"| {name} | {valid:.4f} | {test:.4f} | {share} |")
            print(rows[-1], flush=True)
    md = [
        f"# Post-training convolution in several forms ({dataset}, MF-BPR seed {args.seed})",
        "",
        f"Machine: {platform.machine()}, 2 cores; date {datetime.date.today()}. Command: `.venv/bin/python "
        f"benchmarks/studies/conv_variants.py {args.runs_dir} --seed {args.seed}`. The MF-BPR run is the benchmark's "
        "(`lightgode benchmark --models mf-bpr`); LightGCN's test NDCG@20 of the same seed"
        + (f" is {gcn:.4f} (docs/results/benchmark.csv)." if gcn else " is not known here."),
        "",
        "| post-training embeddings of the same E0 | valid NDCG@20 | test NDCG@20 | % of LightGCN (test) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    out = args.docs_dir / f"analysis_conv_variants_{dataset}.md"
    write_text(out, "\n".join(md))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
