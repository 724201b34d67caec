"""The benchmark's run loop: every missing run of a :class:`~lightgode.bench.settings.BenchmarkConfig`, then the
runs derived from the points chosen on validation.

Complete runs are skipped, an interrupted one continues from its checkpoint, so a benchmark spanning days resumes
where it stopped. ``mf-conv`` reuses the trained ``mf-bpr`` run of the same seed (post-training layers need no
training). LightGODE's horizon T costs no retraining, so besides the paper's T each chosen LightGODE run gets a copy
with T chosen on validation (``seed<seed>.tuned``); with ``refit``, each chosen run is retrained on the whole
training file (``seed<seed>.refit``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lightgode.bench.execute import execute, run_isolated
from lightgode.bench.ledger import Recorded, changed_settings, chosen_point, is_complete, recorded_index, recorded_row
from lightgode.bench.settings import (
    REFIT_MODELS,
    REFIT_SUFFIX,
    RUN_ORDER,
    TUNED_SUFFIX,
    BenchmarkConfig,
    model_device,
    run_config,
    run_dir,
    variant_name,
    variants,
)
from lightgode.core.config import RunConfig
from lightgode.errors import ConfigError
from lightgode.locks import held_elsewhere
from lightgode.runs import store as artifacts

log = logging.getLogger(__name__)


def refit_config(selected: Path) -> RunConfig:
    """The settings of a chosen run (grid point, filter or layer settings picked on validation), trained on every
    training interaction, without validation, for the number of epochs early stopping chose."""
    best_epoch = int(artifacts.read_json(selected / "train.json").get("best_epoch", 0))
    epochs = max(best_epoch, 1)  # no validation: trains exactly this many epochs
    return RunConfig.from_stored(artifacts.read_json(selected / "config.json")).override(
        {"data": {"ratios": (1.0, 0.0, 0.0)}, "train": {"epochs": epochs}}
    )


def _refit_is_current(out: Path, cfg: RunConfig) -> bool:
    """Whether a complete refit run was made from these settings (not from a grid point since superseded)."""
    if not is_complete(out):
        return False
    try:  # through RunConfig: a setting added since, at its default, does not make the refit stale
        made = RunConfig.from_stored(artifacts.read_json(out / "config.json"))
    except ConfigError:
        return False
    # patience plays no part without validation (refits made before it was left alone had it at 1); nor does
    # the device the refit trained on
    return replace(made, train=replace(made.train, patience=cfg.train.patience, device=cfg.train.device)) == cfg


def _conv_base(out: Path) -> Path | None:
    """The mf-bpr run a complete mf-conv run was built on."""
    base = artifacts.read_json(out / "train.json").get("base_run") if (out / "train.json").is_file() else None
    return Path(base) if base else None


@dataclass
class BenchmarkProgress:
    done: list[Path] = field(default_factory=list)  # runs completed by this invocation
    skipped: list[Path] = field(default_factory=list)  # runs already complete
    recorded: list[Path] = field(default_factory=list)  # runs not on disk, recorded with the same settings


def run_benchmark(
    bench: BenchmarkConfig, *, report: Callable[[str], None] | None = None, recorded: list[dict[str, Any]] | None = None
) -> BenchmarkProgress:
    """Run every missing (dataset, model, seed) of ``bench``; complete runs are skipped, and so are runs not on
    disk whose row ``recorded`` (an earlier report's CSV rows) holds with the same settings: a grid point recorded
    so counts as complete, and what is derived from a point (mf-conv's layers, T on validation, a refit) is made
    again only when a point on disk wins on validation."""
    progress = BenchmarkProgress()
    say = report or (lambda msg: log.info(msg))
    known = recorded_index(recorded or [], bench.protocol)
    order = sorted(bench.models, key=lambda m: RUN_ORDER.index(m) if m in RUN_ORDER else len(RUN_ORDER))
    for dataset in bench.datasets:
        for seed in bench.seeds:
            for model, variant in ((m, v) for m in order for v in variants(bench, dataset, m)):
                out = run_dir(bench, dataset, model, seed, variant)
                point = chosen_point(bench, dataset, "mf-bpr", seed, known) if model == "mf-conv" else None
                # mf-conv carries the trained settings of the mf-bpr point it is built on
                cfg = run_config(bench, dataset, model, seed, point.variant if point else variant)
                base = point.path if point else None
                if is_complete(out) and not (base is not None and _conv_base(out) != base):
                    changed = changed_settings(artifacts.read_json(out / "config.json"), cfg)
                    if changed is None:
                        progress.skipped.append(out)
                        continue
                    say(f"{out} was made with other settings ({changed}); training it again")
                elif (
                    base is None
                    and not out.with_name(out.name + ".ckpt").exists()  # workflow.checkpoint_dir
                    and recorded_row(known, bench, dataset, model, seed, variant, cfg) is not None
                ):
                    # (mf-conv on an mf-bpr run on disk is rebuilt on it: post-training layers only; a run
                    # begun again, --retrain-recorded, is resumed from its checkpoint)
                    progress.recorded.append(out)
                    continue
                spec: dict[str, Any] = {"config": cfg.to_dict(), "out": str(out)}
                if base is not None:  # mf-conv on the mf-bpr grid point chosen on validation
                    spec["base"] = str(base)
                out.parent.mkdir(parents=True, exist_ok=True)
                say(f"running {bench.protocol} / {dataset} / {model}{variant_name(variant)} / seed {seed}")
                _run_spec(bench, spec, progress, say)
            tune = bench.tune_t and "lightgode" in bench.models
            if tune:
                _tune_t(bench, dataset, seed, progress, say, known)
            if bench.refit:
                for model in (m for m in order if m in REFIT_MODELS):
                    _refit(bench, dataset, model, seed, progress, say, known)
                if tune:
                    _tune_t(bench, dataset, seed, progress, say, known, refit=True)
    if progress.recorded:
        say(
            f"{len(progress.recorded)} runs not on disk are recorded in the report's CSV with the same settings and "
            "were not trained again (--retrain-recorded trains them)"
        )
    return progress


def _digest(run: Path) -> str:
    """A fingerprint of a complete run's settings and results (a derived run is redone when its source changes)."""
    import hashlib

    return hashlib.sha256((run / "config.json").read_bytes() + (run / "metrics.json").read_bytes()).hexdigest()[:16]


def _tune_t(
    bench: BenchmarkConfig,
    dataset: str,
    seed: int,
    progress: BenchmarkProgress,
    say: Callable[[str], None],
    recorded: Recorded | None = None,
    *,
    refit: bool = False,
) -> None:
    """LightGODE with T chosen on validation, from the run chosen on validation (``seed<N>.tuned``); with
    ``refit``, the refit run propagated with that T (``seed<N>.refit.tuned``: the refit has no validation)."""
    own = run_dir(bench, dataset, "lightgode", seed)
    tuned = own.with_name(own.name + TUNED_SUFFIX)
    if refit:
        source, t_from, out = (
            own.with_name(own.name + REFIT_SUFFIX),
            tuned,
            own.with_name(own.name + REFIT_SUFFIX + TUNED_SUFFIX),
        )
    else:
        point = chosen_point(bench, dataset, "lightgode", seed, recorded)
        source, t_from, out = point.path if point else None, None, tuned
        if point is not None and point.path is None:  # a recorded point won: its recorded copy stands
            _set_aside(out, say)
            return
    if source is None or not is_complete(source) or (t_from is not None and not is_complete(t_from)):
        return
    sources = {"run": str(source), "digest": _digest(source)}
    if t_from is not None:
        sources |= {"t_from": str(t_from), "t_digest": _digest(t_from)}
    if is_complete(out) and artifacts.read_json(out / "train.json").get("derived_from") == sources:
        progress.skipped.append(out)
        return
    spec = {"out": str(out), "tune_from": str(source), "t_from": str(t_from) if t_from else None, "sources": sources}
    say(f"choosing T on validation for {source}" if t_from is None else f"propagating {source} with the T of {t_from}")
    _run_spec(bench, spec, progress, say)


def _refit(
    bench: BenchmarkConfig,
    dataset: str,
    model: str,
    seed: int,
    progress: BenchmarkProgress,
    say: Callable[[str], None],
    recorded: Recorded | None = None,
) -> None:
    """Retrain the run chosen on validation on the whole training file (``seed<N>.refit``); a recorded point that
    wins keeps its recorded refit row."""
    point = chosen_point(bench, dataset, model, seed, recorded)
    chosen = point.path if point else None
    out = run_dir(bench, dataset, model, seed).with_name(f"seed{seed}{REFIT_SUFFIX}")
    if point is not None and chosen is None:  # a recorded point won: its recorded refit stands
        _set_aside(out, say)
    if chosen is None:
        return
    cfg = refit_config(chosen)  # trained where this benchmark trains, wherever the chosen run was
    cfg = cfg.override({"train": {"device": model_device(bench, model)}})
    if _refit_is_current(out, cfg):
        progress.skipped.append(out)
        return
    # a refit made from other settings stays in place until its replacement is complete (then renamed over it)
    say(f"refitting {chosen} on all training interactions ({cfg.train.epochs} epochs)")
    _run_spec(bench, {"config": cfg.to_dict(), "out": str(out)}, progress, say)


def _set_aside(derived: Path, say: Callable[[str], None]) -> None:
    """Move a derived run (T on validation, refit) made from a point that has since lost on validation to a
    recorded point out of the report's way (``<name>.superseded``; the recorded row of the winner stands)."""
    if derived.is_dir():
        target = derived.with_name(derived.name + ".superseded")
        if target.exists():
            import shutil

            shutil.rmtree(target)
        derived.rename(target)
        say(f"{derived} was made from a grid point that lost on validation to a recorded one; moved to {target.name}")


def _run_spec(
    bench: BenchmarkConfig, spec: dict[str, Any], progress: BenchmarkProgress, say: Callable[[str], None]
) -> None:
    """Run one spec (in its own process unless ``bench.isolate`` is off) and record it as done; a run another
    process is training is left to it (``execute`` checks again, for the race between the two)."""
    out = Path(spec["out"])
    if held_elsewhere(out.with_name(out.name + ".lock")):
        say(f"{out} is being trained by another process; left to it")
        return
    t0 = time.perf_counter()
    if not (run_isolated(spec) if bench.isolate else execute(spec)):
        say(f"{out} was taken by another process; left to it")
        return
    say(f"finished {spec['out']} in {time.perf_counter() - t0:.0f} s")
    progress.done.append(Path(spec["out"]))
