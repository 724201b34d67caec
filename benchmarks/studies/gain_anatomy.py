"""Where LightGODE's gain over its own E0 comes from: the direction or the length of the propagated rows.

Usage: .venv/bin/python benchmarks/studies/gain_anatomy.py RUN_DIR [RUN_DIR ...] [--exponents 0,0.05,...] [--name NAME]
                                                   [--made-by COMMAND] [--docs-dir docs]

Each RUN_DIR is a complete LightGODE run of the same dataset (``lightgode train``, or a benchmark's
``lightgode/seed<N>``); with several (seeds), the page gives mean ± std. Its E(0) is
DirectAU's embeddings, its E(T) the post-training ODE's output with the run's own T and solver. A user's ranking
depends only on the direction of the user's row (scaling it scales every score alike), and on both the direction
and the length of every item row. So the script splits the ODE's effect into parts, each scored by full ranking
on validation and test (the same evaluation as training):

- E(0) alone (DirectAU: no graph at test) and E(T) (LightGODE);
- the direction of E(0) with the length of E(T), and the direction of E(T) with the length of E(0);
- the ODE's output for the items only (users keep E(0)), and for the users only;
- no graph product at all: E(0) with every item row scaled by (1 + training degree) ** a, for each exponent a
  of ``--exponents``; a is chosen on validation and the test figure read at it;
- E(T) with the same scaling on top (exponent b, chosen on validation): how much length the ODE leaves out.

It also reports how far the rows turned (mean 1 - cos(E(T)_v, E(0)_v), ``discrepancy.cosine_distance``) and how
the items' length gain ||E(T)_i|| / ||E(0)_i|| follows their degree (Spearman's rho, and the slope of
log gain on log(1 + degree)). Writes docs/results/analysis_gain_<dataset>.md and .png.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from lightgode.atomic import write_png, write_text  # noqa: E402
from lightgode.bench import plus_minus  # noqa: E402
from lightgode.core.discrepancy import cosine_distance  # noqa: E402
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking  # noqa: E402
from lightgode.errors import ConfigError, LightGODEError  # noqa: E402
from lightgode.models.base import exclude_csr  # noqa: E402
from lightgode.runs.store import (  # noqa: E402
    check_complete,
    load_model,  # noqa: E402
    load_run,
    read_json,
)

DEFAULT_EXPONENTS = "-0.1,-0.05,0,0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.5"
DEGREE_ROW = "E(0), item rows x (1 + degree)^a, a chosen on validation (no graph product)"
BOTH_ROW = "E(T), item rows x (1 + degree)^b, b chosen on validation"


def unit(X: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(X, dim=1)


def lengths(X: torch.Tensor) -> torch.Tensor:
    return X.norm(dim=1, keepdim=True)


def parts(E0: torch.Tensor, ET: torch.Tensor, n_users: int) -> dict[str, torch.Tensor]:
    """The ODE's effect split into direction and length, and into its user and item halves (users stacked first)."""
    return {
        "E(0): DirectAU, no graph at test": E0,
        "E(T): LightGODE": ET,
        "direction of E(0), length of E(T)": unit(E0) * lengths(ET),
        "direction of E(T), length of E(0)": unit(ET) * lengths(E0),
        "E(T) for items, E(0) for users": torch.cat([E0[:n_users], ET[n_users:]]),
        "E(T) for users, E(0) for items": torch.cat([ET[:n_users], E0[n_users:]]),
    }


def degree_scaled(E0: torch.Tensor, n_users: int, item_degree: torch.Tensor, a: float) -> torch.Tensor:
    """E(0) with item row i scaled by (1 + degree_i) ** a: no graph product."""
    return torch.cat([E0[:n_users], E0[n_users:] * (1.0 + item_degree[:, None]) ** a])


def length_gain_vs_degree(
    E0: torch.Tensor, ET: torch.Tensor, n_users: int, item_degree: torch.Tensor
) -> tuple[float, float]:
    """Spearman's rho between items' ||E(T)_i|| / ||E(0)_i|| and degree, and the slope of log gain on log(1 + d)."""
    keep = (E0[n_users:].norm(dim=1) > 0) & (item_degree > 0)
    gain = (ET[n_users:].norm(dim=1) / E0[n_users:].norm(dim=1).clamp_min(1e-30))[keep].double().numpy()
    deg = item_degree[keep].double().numpy()
    rho = float(spearmanr(gain, deg).statistic)
    slope = float(np.polyfit(np.log1p(deg), np.log(gain), 1)[0])
    return rho, slope


def anatomy(run_dir: Path, exponents: list[float]) -> dict:
    """One run's figures: NDCG@20 / Recall@20 of every part, the degree sweep, the turn and the length gain."""
    run = load_run(run_dir)
    if run.config.get("model") != "lightgode":
        raise ConfigError(f"{run_dir} is a {run.config.get('model')!r} run, not a lightgode run")
    model = load_model(run)
    split, tr = run.split, run.split.train
    n_users = len(tr.user_ids)
    E0 = model.E0_.detach().to(torch.float32)
    ET = torch.cat([model.user_embeddings_, model.item_embeddings_]).to(torch.float32)  # load_model propagated E0
    item_degree = torch.from_numpy(np.bincount(tr.items, minlength=len(tr.item_ids))).to(torch.float32)
    cfg = EvalConfig(ks=(20,))
    sets = {
        "valid": (split.valid.to_csr(), exclude_csr([split.train])),
        "test": (split.test.to_csr(), exclude_csr([split.train, split.valid])),
    }

    def score(E: torch.Tensor) -> tuple[float, float, float]:
        s = embedding_scorer(E[:n_users].contiguous(), E[n_users:].contiguous())
        m = {k: full_ranking(s, rel, ex, cfg) for k, (rel, ex) in sets.items()}
        return m["valid"]["ndcg@20"], m["test"]["ndcg@20"], m["test"]["recall@20"]

    with torch.no_grad():
        measured = {label: score(E) for label, E in parts(E0, ET, n_users).items()}
        sweep = {a: score(degree_scaled(E0, n_users, item_degree, a)) for a in exponents}
        sweep_t = {b: score(degree_scaled(ET, n_users, item_degree, b)) for b in exponents}
    best_a = max(exponents, key=lambda a: sweep[a][0])
    best_b = max(exponents, key=lambda b: sweep_t[b][0])
    measured[DEGREE_ROW] = sweep[best_a]
    measured[BOTH_ROW] = sweep_t[best_b]
    for label, (v, t, r) in measured.items():
        print(f"{run_dir}: {label}: valid NDCG@20 {v:.4f}, test NDCG@20 {t:.4f}, test Recall@20 {r:.4f}", flush=True)
    return {
        "measured": measured,
        "sweep": sweep,
        "sweep_t": sweep_t,
        "best_a": best_a,
        "best_b": best_b,
        "seed": run.config.get("seed"),
        "ode": run.config["ode"],
        "data": str(run.config["data"]["data"]),
        "turn": (cosine_distance(E0[:n_users], ET[:n_users]), cosine_distance(E0[n_users:], ET[n_users:])),
        "gain": length_gain_vs_degree(E0, ET, n_users, item_degree),
    }


def mean_std(values: list[float]) -> str:
    """'m' for one value, 'm ± s' (sample std) for more."""
    return plus_minus((float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0))


def plot(path: Path, name: str, results: list[dict], exponents: list[float]) -> None:
    """NDCG@20 against the exponent, for the scaling of E(0) (no graph) and of E(T) (a = 0: LightGODE itself)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for key, style, base in (("sweep", "o-", "E(0)"), ("sweep_t", "s:", "E(T)")):
        for i, (split_name, color) in enumerate((("valid", "tab:blue"), ("test", "tab:orange"))):
            ax.plot(
                exponents,
                [np.mean([r[key][a][i] for r in results]) for a in exponents],
                style,
                color=color,
                label=f"{base}, items x (1 + degree)^a ({split_name})",
            )
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("exponent a (a = 0: E(0) is DirectAU, E(T) is LightGODE)")
    ax.set_ylabel("NDCG@20" + (f" (mean of {len(results)} runs)" if len(results) > 1 else ""))
    ax.set_title(f"{name}: item-degree scaling, with and without the ODE", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_png(path, fig)  # makes the folder too


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", type=Path, nargs="+", help="complete LightGODE runs of one dataset (seeds)")
    ap.add_argument("--exponents", default=DEFAULT_EXPONENTS, help="item-degree exponents a, comma-separated")
    ap.add_argument("--docs-dir", type=Path, default=Path("docs/results"))
    ap.add_argument("--name", help="page name (default: the runs' dataset)")
    ap.add_argument("--made-by", help="the command that made the runs, for the page")
    args = ap.parse_args()
    try:
        exponents = [float(a) for a in args.exponents.split(",")]
        if not exponents or not all(np.isfinite(exponents)):
            raise ValueError
    except ValueError:
        ap.error(f"--exponents must be finite numbers separated by commas, got {args.exponents!r}")
    torch.set_num_threads(1)
    try:
        datasets = {str(read_json(check_complete(d) / "config.json")["data"]["data"]) for d in args.run_dirs}
        if len(datasets) > 1:
            raise ConfigError(f"the runs are of different datasets: {', '.join(sorted(datasets))}")
        results = [anatomy(d, exponents) for d in args.run_dirs]
    except LightGODEError as err:
        print(f"gain_anatomy.py: error: {err}", file=sys.stderr)
        sys.exit(2)
    name = args.name or Path(results[0]["data"]).name.removesuffix(".txt")
    rows = [
        f"| {label} | {mean_std([r['measured'][label][0] for r in results])} "
        f"| {mean_std([r['measured'][label][1] for r in results])} "
        f"| {mean_std([r['measured'][label][2] for r in results])} |"
        for label in results[0]["measured"]
    ]
    sweep_rows = [
        f"| {a:g} | "
        + " | ".join(mean_std([r[key][a][i] for r in results]) for key in ("sweep", "sweep_t") for i in (0, 1))
        + " |"
        for a in exponents
    ]
    png = args.docs_dir / f"analysis_gain_{name}.png"
    plot(png, name, results, exponents)
    runs = ", ".join(
        f"`{d}` (seed {r['seed']}, T {r['ode']['t']:g}, {r['ode']['solver']})" for d, r in zip(args.run_dirs, results)
    )
    cmd = f".venv/bin/python benchmarks/studies/gain_anatomy.py {' '.join(str(d) for d in args.run_dirs)}"
    if args.name:
        cmd += f" --name {args.name}"
    if args.made_by:
        cmd += f" --made-by '{args.made_by}'"
    made = f", made by `{args.made_by}`" if args.made_by else ""
    md = [
        f"# Where LightGODE's gain comes from ({name})",
        "",
        f"Machine: {platform.machine()}, 1 torch thread; date {datetime.date.today()}. Command: `{cmd}`. "
        f"Runs: {runs}{made}; each is made again by `lightgode train --config RUN/config.json --out RUN`.",
        "",
        "A user's ranking depends only on the direction of the user's row; it depends on both the direction and "
        "the length of each item row. Each row below scores the same trained E(0) in another way (full ranking, "
        "validation and test as in training" + ("; mean ± std over the runs" if len(results) > 1 else "") + "):",
        "",
        "| scores from | valid NDCG@20 | test NDCG@20 | test Recall@20 |",
        "|---|---|---|---|",
        *rows,
        "",
        "Exponents chosen on validation: a "
        + ", ".join(f"{r['best_a']:g}" for r in results)
        + "; b "
        + ", ".join(f"{r['best_b']:g}" for r in results)
        + ". "
        "How far the ODE turned the rows (mean 1 - cos(E(T)_v, E(0)_v)): users "
        + ", ".join(f"{r['turn'][0]:.4f}" for r in results)
        + "; items "
        + ", ".join(f"{r['turn'][1]:.4f}" for r in results)
        + ". Items' length gain ||E(T)_i|| / ||E(0)_i|| "
        "against training degree: Spearman's rho "
        + ", ".join(f"{r['gain'][0]:.3f}" for r in results)
        + "; slope of log gain on log(1 + degree) "
        + ", ".join(f"{r['gain'][1]:.3f}" for r in results)
        + ".",
        "",
        "Item rows scaled by (1 + training degree)^a, on E(0) (no graph product; a = 0 is E(0), a < 0 favours rare items) and on E(T) "
        "(a = 0 is LightGODE), by exponent a:",
        "",
        "| a | E(0) scaled: valid NDCG@20 | test NDCG@20 | E(T) scaled: valid NDCG@20 | test NDCG@20 |",
        "|---|---|---|---|---|",
        *sweep_rows,
        "",
        f"![{png.stem}]({png.name})",
        "",
    ]
    out = args.docs_dir / f"analysis_gain_{name}.md"
    write_text(out, "\n".join(md))
    print(f"wrote {out} and {png}")


if __name__ == "__main__":
    main()
