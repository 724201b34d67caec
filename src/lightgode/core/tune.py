"""Choose the ODE horizon T on validation, with the trained embeddings E0 fixed.

Re-propagating costs one sparse product per solver step, so T (for a given solver and step count) can be
searched after training for the price of a few validation passes. The search is a coarse grid over
[t_min, t_max] followed by bracketing refinement around the best point: each refinement step evaluates
the midpoint of the wider gap between the best T so far and its evaluated neighbours, so the bracket that
holds the maximum of a unimodal curve halves every one or two steps. Ties go to the smaller T (less
drift from E0). Only validation interactions are scored; test is never read here.

Cost: ``grid + refine`` propagations and validation passes (10 by default), plus up to ``extend`` (3) grid steps
beyond t_max when the curve is still rising there. A validation pass scores every
item for every validation user, so a pass is capped at ``max_scores`` user-item scores (6e8: every
validation user on Beauty or Toys, 14,640 of Gowalla's 29,858 users x 40,981 items, about 1.2 s a pass on
2 cores); beyond the cap the users are a fixed seeded sample, the same at every T, so the curves compared are
paired, which keeps the choice stable while bounding the time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lightgode.core.discrepancy import DiscrepancyConfig, discrepancy, reference
from lightgode.core.evaluate import METRICS, EvalConfig, embedding_scorer, full_ranking
from lightgode.core.graph import to_torch
from lightgode.core.ode import ODEConfig, propagate
from lightgode.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    t_min: float = 0.0  # smallest horizon searched
    t_max: float = 4.0  # largest horizon searched
    grid: int = 7  # points of the coarse grid (equally spaced, ends included)
    refine: int = 3  # further evaluations that narrow the bracket around the best grid point
    extend: int = 3  # grid steps added beyond t_max, one at a time, while the best T is the largest evaluated
    metric: str = "ndcg@20"  # validation metric maximised
    max_users: int | None = None  # score at most this many validation users (fixed seeded sample); None = no cap
    max_scores: int | None = 600_000_000  # cap on users x items scored per pass (samples users); None = no cap
    seed: int = 0  # seeds the user sample and the uniformity row sample

    def __post_init__(self) -> None:
        if not (np.isfinite(self.t_min) and np.isfinite(self.t_max) and 0 <= self.t_min < self.t_max):
            raise ConfigError(f"need 0 <= t_min < t_max (finite), got t_min={self.t_min}, t_max={self.t_max}")
        if int(self.grid) != self.grid or self.grid < 2:
            raise ConfigError(f"grid must be an integer >= 2, got {self.grid}")
        if int(self.refine) != self.refine or self.refine < 0:
            raise ConfigError(f"refine must be an integer >= 0, got {self.refine}")
        if int(self.extend) != self.extend or self.extend < 0:
            raise ConfigError(f"extend must be an integer >= 0, got {self.extend}")
        name, _, k = self.metric.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) <= 0:
            raise ConfigError(f"metric must be <metric>@<K> with metric in {METRICS}, got {self.metric!r}")
        for name in ("max_users", "max_scores"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1):
                raise ConfigError(f"{name} must be an integer >= 1 or None, got {v}")

    def user_cap(self, n_items: int) -> int | None:
        """Validation users scored per pass for a catalogue of ``n_items`` (None: all)."""
        caps = [
            c
            for c in (self.max_users, self.max_scores // max(n_items, 1) if self.max_scores else None)
            if c is not None
        ]
        return max(1, min(caps)) if caps else None


def maximize(
    f: Callable[[float], float], lo: float, hi: float, *, grid: int, refine: int, extend: int = 0
) -> tuple[float, dict[float, float]]:
    """Maximise a scalar function of one variable on [lo, hi] with ``grid + refine`` (+ ``extend``) evaluations.

    While the best grid point is the largest evaluated, up to ``extend`` more grid steps beyond ``hi`` are
    evaluated one at a time (a curve still rising at ``hi`` is followed instead of cut off).
    Returns the best x (ties: the smallest) and every evaluated point {x: f(x)}.
    """
    seen: dict[float, float] = {}

    def ev(x: float) -> None:
        x = float(x)
        if x not in seen:
            seen[x] = float(f(x))

    for x in np.linspace(lo, hi, grid):
        ev(x)
    step = (hi - lo) / (grid - 1)
    for _ in range(extend):
        xs = sorted(seen)
        if _best_index(xs, seen) != len(xs) - 1:
            break
        ev(xs[-1] + step)
    for _ in range(refine):
        xs = sorted(seen)
        b = _best_index(xs, seen)
        left = xs[b] - xs[b - 1] if b > 0 else 0.0
        right = xs[b + 1] - xs[b] if b + 1 < len(xs) else 0.0
        if max(left, right) <= 1e-9 * max(1.0, hi - lo):
            break
        if left > right or (left == right and seen[xs[b - 1]] >= seen[xs[b + 1]]):
            ev((xs[b - 1] + xs[b]) / 2)
        else:
            ev((xs[b] + xs[b + 1]) / 2)
    xs = sorted(seen)
    return xs[_best_index(xs, seen)], seen


def _best_index(xs: list[float], values: dict[float, float]) -> int:
    best = 0
    for i, x in enumerate(xs):
        if values[x] > values[xs[best]]:
            best = i
    return best


@dataclass
class TuneResult:
    """The chosen horizon and the validation curve behind it."""

    ode: ODEConfig  # the chosen settings (``ode.t`` is the tuned T)
    metric: str  # the maximised validation metric
    value: float  # its value at the chosen T
    points: list[dict[str, Any]]  # sorted by T: {"t", "metrics", "discrepancy", "seconds"}
    seconds: float  # wall time of the whole search
    config: TuneConfig
    valid_users: int  # validation users scored at each point

    @property
    def t(self) -> float:
        return self.ode.t

    @property
    def at_boundary(self) -> bool:
        """True when the best T is the largest evaluated (after any extension): the curve may still rise."""
        return self.ode.t >= max(p["t"] for p in self.points) and self.ode.t > self.config.t_min

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.ode.t,
            "ode": asdict(self.ode),
            "metric": self.metric,
            "value": self.value,
            "at_boundary": self.at_boundary,
            "seconds": self.seconds,
            "evaluations": len(self.points),
            "valid_users": self.valid_users,
            "config": asdict(self.config),
            "points": self.points,
        }


def _sample_users(relevant: sp.csr_matrix, max_users: int | None, seed: int) -> sp.csr_matrix:
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if max_users is None or len(users) <= max_users:
        return relevant
    keep = np.zeros(relevant.shape[0], dtype=np.float32)
    keep[np.random.default_rng(seed).choice(users, size=max_users, replace=False)] = 1.0
    out = (sp.diags(keep) @ relevant).tocsr()
    out.eliminate_zeros()
    return out


def tune_horizon(
    A_hat: sp.csr_matrix | torch.Tensor,
    E0: torch.Tensor,
    n_users: int,
    valid: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    *,
    ode: ODEConfig = ODEConfig(),
    config: TuneConfig = TuneConfig(),
    eval_config: EvalConfig | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Search T maximising ``config.metric`` on validation for fixed E0, solver and steps.

    Parameters
    ----------
    A_hat : scipy CSR or torch sparse CSR, shape (N, N), the normalised training graph
    E0 : torch.Tensor float32, shape (N, d), stacked user and item embeddings
    n_users : int, the first ``n_users`` rows of E0 are users
    valid : CSR (n_users, n_items), validation positives
    exclude : CSR (n_users, n_items) or None, items never ranked (the training items)
    ode : ODEConfig, solver, steps and tolerances; its ``t`` is ignored
    on_point : called with each evaluated point, for progress reports

    Returns
    -------
    TuneResult whose ``ode`` is ``ode`` with the best T.
    """
    if valid.shape != (n_users, E0.shape[0] - n_users):
        raise DataError(
            f"validation matrix {valid.shape} does not match {n_users} users and {E0.shape[0] - n_users} items"
        )
    relevant = _sample_users(valid.tocsr(), config.user_cap(valid.shape[1]), config.seed)
    n_valid = int((np.diff(relevant.indptr) > 0).sum())
    if n_valid == 0:
        raise DataError("the validation part is empty: T cannot be tuned without validation interactions")
    k = int(config.metric.partition("@")[2])
    base = eval_config or EvalConfig()
    ecfg = replace(base, ks=tuple(sorted({k, 20})), valid_metric=f"ndcg@{k}")
    A = to_torch(A_hat) if sp.issparse(A_hat) else A_hat
    E0 = E0.detach().to(torch.float32)
    disc_cfg = DiscrepancyConfig(seed=config.seed)
    disc_ref = reference(E0, n_users, disc_cfg)
    records: dict[float, dict[str, Any]] = {}

    def objective(T: float) -> float:
        t0 = time.perf_counter()
        E = propagate(A, E0, replace(ode, t=T))
        t_prop = time.perf_counter() - t0
        metrics = full_ranking(embedding_scorer(E[:n_users], E[n_users:]), relevant, exclude, ecfg)
        point = {
            "t": T,
            "metrics": metrics,
            "discrepancy": discrepancy(E0, E, n_users, disc_cfg, disc_ref),
            "propagate_seconds": t_prop,
            "seconds": time.perf_counter() - t0,
        }
        records[T] = point
        log.info("T=%.4f %s=%.5f (%.2f s)", T, config.metric, metrics[config.metric], point["seconds"])
        if on_point is not None:
            on_point(point)
        return metrics[config.metric]

    start = time.perf_counter()
    best, values = maximize(
        objective, config.t_min, config.t_max, grid=config.grid, refine=config.refine, extend=config.extend
    )
    seconds = time.perf_counter() - start
    points = [records[t] for t in sorted(records)]
    return TuneResult(replace(ode, t=best), config.metric, values[best], points, seconds, config, n_valid)


def plot_t_curve(result: TuneResult, path: str | Path, *, title: str = "") -> None:
    """Validation NDCG@20 (left panel) and Recall@20 (right panel) against T, each with the embedding
    discrepancy (mean cosine distance, uniformity change) on a second axis; the chosen T is dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ts = [p["t"] for p in result.points]
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_n, ax_r = fig.subplots(1, 2)
    for ax, name in ((ax_n, "ndcg@20"), (ax_r, "recall@20")):
        ax.plot(ts, [p["metrics"][name] for p in result.points], "o-", color="tab:blue", ms=4)
        ax.axvline(result.t, color="tab:blue", ls=":", lw=1)
        ax.set_xlabel("ODE horizon T")
        ax.set_ylabel(f"validation {name.replace('ndcg', 'NDCG').replace('recall', 'Recall')}", color="tab:blue")
        twin = ax.twinx()
        twin.plot(
            ts,
            [p["discrepancy"]["cosine_distance"] for p in result.points],
            "s--",
            color="tab:red",
            ms=3,
            label="mean cosine distance",
        )
        twin.plot(
            ts,
            [p["discrepancy"]["uniformity_delta"] for p in result.points],
            "^--",
            color="tab:orange",
            ms=3,
            label="uniformity change",
        )
        twin.set_ylabel("discrepancy E(T) vs E(0)", color="tab:red")
    fig.legend(*twin.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    solver = result.ode.solver + (f" x{result.ode.steps}" if result.ode.solver in ("euler", "midpoint", "rk4") else "")
    fig.suptitle(f"{title + ': ' if title else ''}{solver}, chosen T = {result.t:.3g}", fontsize=10)
    fig.savefig(str(path), dpi=110, format="png")


def write_tune_files(directory: str | Path, result: TuneResult, *, title: str = "") -> None:
    """``tune.json`` (the curve) and ``t_curve.png`` into ``directory``, each written atomically."""
    from lightgode.atomic import atomic_path, write_json

    d = Path(directory)
    write_json(d / "tune.json", result.to_dict())
    with atomic_path(d / "t_curve.png") as tmp:
        plot_t_curve(result, tmp, title=title)


def tune_split(
    E0: torch.Tensor,
    split,
    *,
    ode: ODEConfig = ODEConfig(),
    config: TuneConfig = TuneConfig(),
    eval_config: EvalConfig | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    A_hat: sp.csr_matrix | None = None,
) -> TuneResult:
    """``tune_horizon`` on a ``data.split.Split``: the graph of its train part (``A_hat`` when the caller has already
    built it, e.g. a fitted model's ``A_hat_``), its validation part."""
    from lightgode.core.graph import normalized_adjacency

    train = split.train
    if A_hat is None:
        A_hat = normalized_adjacency(train.n_users, train.n_items, train.users, train.items)
    return tune_horizon(
        A_hat,
        E0,
        train.n_users,
        split.valid.to_csr(),
        train.to_csr(),
        ode=ode,
        config=config,
        eval_config=eval_config,
        on_point=on_point,
    )


def tune_fitted(model, split, cfg, *, config: TuneConfig | None = None):
    """After ``fit``: choose T on validation for the model's E0 and return (model at that T, cfg with it, result).

    Used by ``train`` with ``t_auto``; the model's ``ode.t`` until then served early stopping only.
    """
    if not isinstance(cfg.t_auto, bool):
        raise ConfigError(f"t_auto must be true or false, got {cfg.t_auto!r}")
    if not hasattr(model, "E0_") or not hasattr(model, "with_ode") or cfg.model != "lightgode":
        raise ConfigError(
            f"automatic T applies to lightgode runs, not {cfg.model!r}; use 'lightgode propagate "
            f"--t auto' on its embeddings"
        )
    if len(split.valid) == 0:
        raise DataError("automatic T needs validation interactions, but the split has none")
    config = config or TuneConfig(metric=cfg.eval.valid_metric, seed=cfg.seed)
    result = tune_split(model.E0_, split, ode=cfg.ode, config=config, eval_config=cfg.eval, A_hat=model.A_hat_)
    tuned = model.with_ode(result.ode)
    tuned.result_ = model.result_
    return tuned, replace(cfg, ode=result.ode), result
