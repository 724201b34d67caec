"""The paper's two analyses, from the run directories of a benchmark, as Markdown pages with plots.

- ``conv``: graph convolution in training versus at test on one (dataset, seed) (:func:`conv_analysis`).
- ``discrepancy``: accuracy and embedding discrepancy as the post-training layers L or the horizon T grow
  (:func:`discrepancy_analysis`).

:func:`write_analysis` writes either page (``lightgode analyze`` calls it). Test metrics here describe, they select
nothing; every model's settings were chosen on validation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from lightgode.errors import ConfigError

ANALYSES = ("conv", "discrepancy")
T_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
L_GRID = tuple(range(0, 11))


def _load(runs_dir: Path, model: str, seed: int):
    from lightgode.runs.store import load_model, load_run

    run = load_run(runs_dir / model / f"seed{seed}")
    return run, load_model(run)


def _test(model, split) -> dict[str, float]:
    return model.evaluate(split.test, [split.train, split.valid])


def conv_analysis(runs_dir: Path, seed: int, layers: int) -> list[tuple[str, float, float]]:
    """[(label, test Recall@20, test NDCG@20)] for MF, MF+conv at test, LightGCN w/o conv at test, LightGCN."""
    import torch

    from lightgode.models.conv import MFConv

    mf_run, mf = _load(runs_dir, "mf-bpr", seed)
    _, gcn = _load(runs_dir, "lightgcn", seed)
    conv = MFConv(eval=mf.eval_config).with_base(mf.E0_).fit(mf_run.split.train).with_layers(layers)
    _, gcn_e0 = _load(runs_dir, "lightgcn", seed)
    gcn_e0.conv_at_test = False
    gcn_e0._set_embeddings()
    rows = []
    for label, m in (
        ("MF (BPR)", mf),
        (f"MF + {layers} layers at test", conv),
        ("LightGCN without conv at test", gcn_e0),
        ("LightGCN", gcn),
    ):
        with torch.no_grad():
            t = _test(m, mf_run.split)
        rows.append((label, t["recall@20"], t["ndcg@20"]))
    return rows


def discrepancy_analysis(runs_dir: Path, seed: int) -> dict[str, list[tuple[float, float, float]]]:
    """{series: [(L or T, test NDCG@20, mean cosine distance of E(L or T) to E(0))]}."""
    import torch

    from lightgode.core.discrepancy import cosine_distance
    from lightgode.models.conv import MFConv

    out: dict[str, list[tuple[float, float, float]]] = {}
    for model in ("mf-bpr", "directau"):
        path = runs_dir / model / f"seed{seed}"
        if not path.is_dir():
            continue
        run, base = _load(runs_dir, model, seed)
        E0 = base.E0_
        conv = MFConv(eval=base.eval_config).with_base(E0).fit(run.split.train)
        series = []
        for L in L_GRID:
            m = conv.with_layers(L)
            E = torch.cat([m.user_embeddings_, m.item_embeddings_])
            series.append((float(L), _test(m, run.split)["ndcg@20"], cosine_distance(E0, E)))
        out[f"{model} + L layers"] = series
    if (runs_dir / "lightgode" / f"seed{seed}").is_dir():
        run, lg = _load(runs_dir, "lightgode", seed)
        series = []
        for T in T_GRID:
            m = lg.with_ode(replace(lg.ode, t=T))
            E = torch.cat([m.user_embeddings_, m.item_embeddings_])
            series.append((T, _test(m, run.split)["ndcg@20"], cosine_distance(lg.E0_, E)))
        out["lightgode, horizon T"] = series
    return out


PAPER_CONV_SHARE = {"amazon-beauty": 95.9, "amazon-toys-games": 93.8}
"""The paper's MF+conv NDCG@20 as % of LightGCN's (Beauty, Toys)."""


def training_note(path: Path) -> str:
    """How a trained run ended, from its train.json: early stopping, the epoch limit, or a wall-time cap."""
    from lightgode.runs.store import read_json

    info = read_json(path / "train.json")
    best, ran = info.get("best_epoch", 0), info.get("epochs_run", 0)
    if info.get("capped"):
        how = "stopped by the wall-time cap (not converged)"
    elif info.get("stopped_early"):
        how = "stopped early (10 epochs without validation gain)"
    else:
        how = "reached the epoch limit" + (" still improving on validation" if best == ran else "")
    return f"{path.parent.name}: best epoch {best} of {ran}, {how}"


def _plot_conv(rows, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightgode.atomic import write_png

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.bar([r[0] for r in rows], [r[2] for r in rows], color=["tab:gray", "tab:green", "tab:orange", "tab:blue"])
    ax.set_ylabel("test NDCG@20")
    ax.set_title(title)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    write_png(path, fig)


def _plot_discrepancy(series, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lightgode.atomic import write_png

    fig, axes = plt.subplots(1, len(series), figsize=(4.2 * len(series), 3.6), squeeze=False)
    for ax, (name, pts) in zip(axes[0], series.items()):
        x = [p[0] for p in pts]
        ax.plot(x, [p[1] for p in pts], "o-", color="tab:blue")
        ax.set_xlabel("T" if "horizon" in name else "L")
        ax.set_ylabel("test NDCG@20", color="tab:blue")
        ax2 = ax.twinx()
        ax2.plot(x, [p[2] for p in pts], "s--", color="tab:red")
        ax2.set_ylabel("mean cosine distance to E(0)", color="tab:red")
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    write_png(path, fig)


@dataclass(frozen=True)
class AnalysisPage:
    """A written analysis: its Markdown lines, the page and its plot."""

    lines: list[str]
    markdown: Path
    png: Path

    @property
    def summary(self) -> str:
        """The page without its image link (what the command prints)."""
        return "\n".join(self.lines[:-3])


def write_analysis(
    analysis: str, runs_dir: Path, seed: int, docs: Path, *, layers: int = 3, command: str
) -> AnalysisPage:
    """Write ``<docs>/analysis_<analysis>_<dataset>.md`` and its PNG from the runs of ``seed`` under ``runs_dir``
    (one dataset's benchmark folder, whose name is the dataset's); ``command`` is named on the page."""
    from lightgode.atomic import check_target, write_text

    if analysis not in ANALYSES:
        raise ConfigError(f"unknown analysis {analysis!r}; choose one of {', '.join(ANALYSES)}")
    dataset = runs_dir.name
    for kind in ("md", "png"):  # generated pages are replaced by design; a folder that cannot hold them fails first
        check_target(docs / f"analysis_{analysis}_{dataset}.{kind}", overwrite=True, kind="file")
    if analysis == "conv":
        rows = conv_analysis(runs_dir, seed, layers)
        ref = rows[-1][2]
        lines = [
            f"# Graph convolution in training versus at test ({dataset}, seed {seed})",
            "",
            f"Command: `{command}`",
            "",
            "| model | test Recall@20 | test NDCG@20 | % of LightGCN NDCG@20 |",
            "|---|---|---|---|",
        ]
        lines += [f"| {lab} | {rec:.4f} | {nd:.4f} | {100 * nd / ref:.1f}% |" for lab, rec, nd in rows]
        lines += ["", "How the two trained models ended:", ""]
        lines += [f"- {training_note(runs_dir / m / f'seed{seed}')}" for m in ("mf-bpr", "lightgcn")]
        if dataset in PAPER_CONV_SHARE:
            lines += [
                "",
                f"The paper reports MF + convolution at test at {PAPER_CONV_SHARE[dataset]}% of LightGCN's "
                "NDCG@20 on this dataset.",
            ]
        png = docs / f"analysis_conv_{dataset}.png"
        _plot_conv(rows, f"convolution in training vs at test, {dataset}", png)
        md = docs / f"analysis_conv_{dataset}.md"
    else:
        series = discrepancy_analysis(runs_dir, seed)
        lines = [
            f"# Embedding discrepancy against post-training layers L and horizon T ({dataset}, seed {seed})",
            "",
            f"Command: `{command}`",
            "",
            "Discrepancy: mean over users and items of 1 - cos(E(L or T)_v, E(0)_v).",
            "",
            "| series | L or T | test NDCG@20 | discrepancy |",
            "|---|---|---|---|",
        ]
        for name, pts in series.items():
            lines += [f"| {name} | {x:g} | {nd:.4f} | {d:.4f} |" for x, nd, d in pts]
        png = docs / f"analysis_discrepancy_{dataset}.png"
        _plot_discrepancy(series, f"accuracy and embedding discrepancy, {dataset}", png)
        md = docs / f"analysis_discrepancy_{dataset}.md"
    lines += ["", f"![{png.stem}]({png.name})", ""]
    write_text(md, "\n".join(lines))
    return AnalysisPage(lines, md, png)
