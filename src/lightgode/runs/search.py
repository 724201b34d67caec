"""A budgeted, resumable search over a model's training settings, on validation only, with Optuna.

A search directory ``DIR`` holds:

    search.json     the search's own settings (model, base settings, space, seed, budget, storage)
    study.db        the Optuna study (SQLite), unless another storage URL was given
    trials/N/       the weights of each trial that was the best so far when it finished (only the best is kept)
    trials.csv      one row per trial: number, state, value, chosen T, epochs, seconds, settings
    value_vs_time.png, settings.png   the validation metric against time and against each setting
    best/           the best trial as a complete run directory (what ``recommend`` and ``serve`` read)

Every trial trains on the training part and is scored on the validation part; a LightGODE trial then chooses its
horizon T on validation with E0 fixed (``core.tune.tune_fitted``, no training). Test interactions are read once, for
``best/``, after every choice is made.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from lightgode.atomic import atomic_path, check_target, write_json
from lightgode.core.config import BaselineConfig, RunConfig, TrainConfig
from lightgode.core.ode import ODEConfig
from lightgode.errors import ConfigError, DataError, FitError, LightGODEError, OutputError, RunDirError
from lightgode.fieldtypes import shown
from lightgode.locks import target_lock

log = logging.getLogger(__name__)

SEARCHED_MODELS = ("lightgode", "directau", "mf-bpr", "lightgcn")
"""The models a search can tune: the ones trained epoch by epoch."""

STUDY_NAME = "lightgode-search"
SECTIONS = {"train": TrainConfig, "baseline": BaselineConfig, "ode": ODEConfig}
"""The settings a search space may name, as ``section.field``."""


@dataclass(frozen=True)
class Param:
    """One searched setting: a range [low, high] (``log``: sampled on a log scale) or a list of choices."""

    key: str  # "train.lr"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


_MF = {
    "train.lr": Param("train.lr", 1e-4, 1e-2, log=True),
    "train.dim": Param("train.dim", choices=(32, 64, 128)),
    "train.batch_size": Param("train.batch_size", choices=(256, 512, 1024, 2048)),
}
DEFAULT_SPACES: dict[str, dict[str, Param]] = {
    "lightgode": {
        **_MF,
        "train.gamma": Param("train.gamma", 0.1, 10.0, log=True),
        "train.weight_decay": Param("train.weight_decay", 1e-10, 1e-4, log=True),
    },
    "mf-bpr": {**_MF, "baseline.reg": Param("baseline.reg", 1e-6, 1e-2, log=True)},
}
DEFAULT_SPACES["directau"] = DEFAULT_SPACES["lightgode"]
DEFAULT_SPACES["lightgcn"] = DEFAULT_SPACES["mf-bpr"]
"""The default ranges per model; a space file overrides, adds (any numeric ``train.``, ``baseline.`` or ``ode.``
setting) or removes (``null``) entries."""


# ----------------------------------------------------------------------------------------------------------- space


def _field_type(key: str) -> type:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"search space: unknown setting {key!r}; name it section.setting with section "
            f"{', '.join(SECTIONS)} (e.g. train.lr)"
        )
    known = {f.name: f for f in fields(SECTIONS[section])}
    if name not in known:
        raise ConfigError(f"search space: unknown setting {key!r}; {section} has {', '.join(sorted(known))}")
    default = getattr(SECTIONS[section](), name)
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        raise ConfigError(f"search space: {key} is not a numeric setting and cannot be searched")
    return int if isinstance(default, int) else float


def parse_param(key: str, spec: Any) -> Param:
    """A space entry (``{"low", "high", "log"}`` or ``{"choices": [...]}``) checked; a one-line ConfigError."""
    kind = _field_type(key)
    if not isinstance(spec, dict):
        raise ConfigError(
            f'search space: {key}: expected {{"low": .., "high": ..}} or {{"choices": [..]}}, got {shown(spec)}'
        )
    extra = sorted(set(spec) - {"low", "high", "log", "choices"}, key=str)
    if extra:
        raise ConfigError(f"search space: {key}: unknown field {extra[0]!r}; use low, high, log or choices")

    def number(v: Any, what: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"search space: {key}.{what}: expected a finite number, got {shown(v)}")
        if kind is int and int(v) != v:
            raise ConfigError(f"search space: {key}.{what}: {key} takes integers, got {v}")
        return int(v) if kind is int else float(v)

    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ConfigError(f"search space: {key}: give either choices or low/high, not both")
        values = spec["choices"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"search space: {key}.choices: expected a non-empty list, got {shown(values)}")
        return Param(key, choices=tuple(number(v, "choices") for v in values))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"search space: {key}: a range needs both low and high")
    low, high = number(spec["low"], "low"), number(spec["high"], "high")
    log_scale = spec.get("log", False)
    if not isinstance(log_scale, bool):
        raise ConfigError(f"search space: {key}.log: expected true or false, got {shown(log_scale)}")
    if not low < high:
        raise ConfigError(f"search space: {key}: need low < high, got low={low}, high={high}")
    if log_scale and low <= 0:
        raise ConfigError(f"search space: {key}: a log range needs low > 0, got {low}")
    return Param(key, low, high, log=log_scale)


def build_space(model: str, overrides: dict[str, Any] | None = None) -> dict[str, Param]:
    """The model's default space with a space file's entries applied (``null`` drops a setting)."""
    if model not in SEARCHED_MODELS:
        raise ConfigError(f"search tunes {', '.join(SEARCHED_MODELS)}; {model!r} has no training to search")
    space = dict(DEFAULT_SPACES[model])
    if overrides is None:
        return dict(sorted(space.items()))
    if not isinstance(overrides, dict):
        raise ConfigError(f"search space: expected a table of settings, got {shown(overrides)}")
    for key, spec in overrides.items():
        if spec is None:
            _field_type(key)
            space.pop(key, None)
        else:
            space[key] = parse_param(key, spec)
    if not space:
        raise ConfigError("search space: every setting was removed; nothing is left to search")
    return dict(sorted(space.items()))


def load_space_file(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON space file read as a table (one-line ConfigError when missing or malformed)."""
    import json

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"search space file not found: {p}")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse search space file {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f'search space file {p} must hold a table {{"train.lr": {{...}}, ...}}')
    return raw


def nest(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"train.lr": 0.01} -> {"train": {"lr": 0.01}} (a RunConfig override)."""
    out: dict[str, dict[str, Any]] = {}
    for key, v in values.items():
        section, _, name = key.partition(".")
        out.setdefault(section, {})[name] = v
    return out


def check_space(base: RunConfig, space: dict[str, Param]) -> None:
    """Every end of every range and every choice is a possible setting of ``base`` (a one-line ConfigError)."""
    for key, p in space.items():
        for v in p.choices if p.choices is not None else (p.low, p.high):
            try:
                base.override(nest({key: v}))
            except ConfigError as exc:
                raise ConfigError(f"search space: {key}={v} is not a possible setting: {exc}") from None


def suggest(trial, space: dict[str, Param]) -> dict[str, Any]:
    """The trial's settings, drawn by the study's sampler."""
    out: dict[str, Any] = {}
    for key, p in space.items():
        if p.choices is not None:
            out[key] = trial.suggest_categorical(key, list(p.choices))
        elif isinstance(p.low, int) and isinstance(p.high, int):
            out[key] = trial.suggest_int(key, p.low, p.high, log=p.log)
        else:
            out[key] = trial.suggest_float(key, p.low, p.high, log=p.log)
    return out


# ----------------------------------------------------------------------------------------------------- one trial


@dataclass
class TrialOutcome:
    model: Any  # the fitted model (at the chosen T for lightgode)
    cfg: RunConfig  # the trial's settings (with the chosen T)
    value: float  # the validation metric the search maximises
    tune: dict[str, Any] | None  # the T search (lightgode), without its points


def run_trial(cfg: RunConfig, split, *, on_epoch: Callable[[dict], None] | None = None) -> TrialOutcome:
    """Train ``cfg``'s model on ``split.train`` with early stopping on ``split.valid``; for lightgode choose T on
    validation after training. The value is the validation metric (at the chosen T); test is not read."""
    from lightgode.core.tune import tune_fitted
    from lightgode.models import build_model

    model = build_model(cfg)
    model.fit(split.train, split.valid, on_epoch=on_epoch)
    metric = cfg.eval.valid_metric
    if cfg.model == "lightgode":
        cfg = replace(cfg, t_auto=True)
        model, cfg, tuned = tune_fitted(model, split, cfg)
        return TrialOutcome(model, cfg, float(tuned.value), {k: v for k, v in tuned.to_dict().items() if k != "points"})
    value = model.result_.best_valid.get(metric)
    if value is None:
        raise DataError(f"training reported no validation {metric}; the search needs validation interactions")
    return TrialOutcome(model, cfg, float(value), None)


# ---------------------------------------------------------------------------------------------------- the search


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """What a search needs besides the model's base settings."""

    trials: int | None = 20  # finished trials (complete or pruned) over all sessions; None: until the time is spent
    timeout: float | None = None  # wall seconds over all sessions; checked before each trial starts
    seed: int = 0  # seeds the sampler (training uses the base settings' seed)
    workers: int = 1  # processes on this machine sharing the study
    min_epochs: int = 5  # the pruner's first rung (epochs); 0: no pruning
    storage: str | None = None  # an Optuna storage URL; None: sqlite in the search directory

    def __post_init__(self) -> None:
        if self.trials is not None and (
            isinstance(self.trials, bool) or int(self.trials) != self.trials or self.trials < 1
        ):
            raise ConfigError(f"trials must be an integer >= 1, got {self.trials}")
        if self.timeout is not None and not (0 < self.timeout < math.inf):
            raise ConfigError(f"timeout must be a number of seconds > 0, got {self.timeout}")
        if self.trials is None and self.timeout is None:
            raise ConfigError("a search needs a budget: a number of trials, a timeout, or both")
        if int(self.workers) != self.workers or self.workers < 1:
            raise ConfigError(f"workers must be an integer >= 1, got {self.workers}")
        if int(self.min_epochs) != self.min_epochs or self.min_epochs < 0:
            raise ConfigError(f"min_epochs must be an integer >= 0, got {self.min_epochs}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"the search seed must be an integer in 0..2**32-1, got {self.seed}")


@dataclass
class SearchSummary:
    out: Path
    best_dir: Path
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    trials: int  # finished trials in the study
    metrics: dict[str, dict[str, float]]  # the best run's valid and test metrics


def storage_url(out: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(out / 'study.db').resolve()}"


def _storage(url: str, shared: bool):
    import optuna

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}  # parallel workers queue for the file
    if shared:  # trials of a dead machine are marked failed once their heartbeat stops
        kwargs.update(heartbeat_interval=60, grace_period=180)
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # sqlalchemy's errors for a bad URL or an unreachable database
        raise OutputError(f"cannot open the study storage {url}: {str(exc).splitlines()[0]}") from None


def _sampler(seed: int, offset: int, parallel: bool):
    import optuna

    # a resumed session or another worker draws from another stream, so it does not repeat the first draws
    return optuna.samplers.TPESampler(seed=(seed + 1_000_003 * offset) % 2**32, constant_liar=parallel)


def _pruner(min_epochs: int):
    import optuna

    if min_epochs == 0:
        return optuna.pruners.NopPruner()
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs, reduction_factor=3)


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _best(study):
    """The best complete trial, or None."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: (t.value, -t.number)) if done else None


def fail_interrupted(study) -> int:
    """Mark the trials a killed session left running as failed (they are re-run within the budget)."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        n += 1
    return n


def _trial_dir(out: Path, number: int) -> Path:
    return out / "trials" / str(number)


def _save_trial(out: Path, number: int, outcome: TrialOutcome) -> None:
    """Keep a trial's weights and what its run directory needs (staged: complete or absent)."""
    from lightgode.runs.store import save_weights, staged

    with staged(_trial_dir(out, number), overwrite=True, wait_s=30) as d:
        user, item, meta = outcome.model.stored_weights()
        save_weights(d / "weights.safetensors", user, item, meta)
        res = outcome.model.result_
        write_json(
            d / "trial.json",
            {
                "config": outcome.cfg.to_dict(),
                "tune": outcome.tune,
                "value": outcome.value,
                "result": {
                    "best_epoch": res.best_epoch,
                    "best_valid": res.best_valid,
                    "epochs_run": res.epochs_run,
                    "stopped_early": res.stopped_early,
                    "history": res.history,
                },
            },
        )


@dataclass(frozen=True)
class _Job:
    """One worker's share of a search (picklable, for a spawned process)."""

    out: str
    url: str
    shared: bool
    base: dict[str, Any]
    space: dict[str, dict[str, Any]]
    search: dict[str, Any]
    offset: int
    deadline_s: float | None  # seconds left for this session
    threads: int | None
    env_data_dir: str | None
    quiet: bool
    spent_before: float


def _space_from(d: dict[str, dict[str, Any]]) -> dict[str, Param]:
    return {k: parse_param(k, v) for k, v in d.items()}


def run_worker(job: _Job, split=None) -> int:
    """Run trials until the study's budget is spent (on ``split``, else the split of the job's settings); returns
    the number of trials this worker ran."""
    import optuna
    import torch

    from lightgode.runs.workflow import prepare_split

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if job.threads:
        torch.set_num_threads(job.threads)
    base, space, scfg = RunConfig.from_dict(job.base), _space_from(job.space), SearchConfig(**job.search)
    out = Path(job.out)
    if split is None:
        split = prepare_split(base.data, base.seed, env_data_dir=job.env_data_dir)
    if len(split.train) == 0 or len(split.valid) == 0:
        raise DataError(
            "a search needs training and validation interactions; the split left "
            f"{len(split.train)} training and {len(split.valid)} validation interactions"
        )
    study = optuna.load_study(
        study_name=STUDY_NAME,
        storage=_storage(job.url, job.shared),
        sampler=_sampler(scfg.seed, job.offset, scfg.workers > 1),
        pruner=_pruner(scfg.min_epochs),
    )
    metric = base.eval.valid_metric
    start = time.monotonic()
    ran = 0

    def objective(trial) -> float:
        params = suggest(trial, space)
        cfg = base.override(nest(params))
        last = {"epoch": 0}

        def report(row: dict) -> None:
            last["epoch"] = int(row["epoch"])
            value = row.get(f"valid_{metric}")
            if value is not None:
                trial.report(float(value), int(row["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

        t0 = time.perf_counter()
        try:
            outcome = run_trial(cfg, split, on_epoch=report)
        except optuna.TrialPruned:
            trial.set_user_attr("epochs", last["epoch"])
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            raise
        except FitError as exc:  # a diverged training is a weak trial, not a failed search
            trial.set_user_attr("epochs", last["epoch"])
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            trial.set_user_attr("note", " ".join(str(exc).split())[:200])
            raise optuna.TrialPruned("diverged") from None
        res = outcome.model.result_
        trial.set_user_attr("epochs", res.epochs_run)
        trial.set_user_attr("best_epoch", res.best_epoch)
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        if outcome.tune is not None:
            trial.set_user_attr("t", outcome.tune["t"])
        best = _best(study)
        if best is None or outcome.value >= best.value:  # the best so far: keep its weights for best/
            _save_trial(out, trial.number, outcome)
        return outcome.value

    def after(study, trial) -> None:
        nonlocal ran
        ran += 1
        spent = job.spent_before + time.monotonic() - start
        study.set_user_attr("seconds_spent", max(spent, float(study.user_attrs.get("seconds_spent", 0.0))))
        write_trials_csv(out / "trials.csv", study, space)
        if not job.quiet:
            print(progress_line(study, trial, scfg, spent), file=sys.stderr, flush=True)

    def budget_left() -> bool:
        first = ran == 0 and _finished(study) == 0  # a time budget always buys the study its first trial
        if job.deadline_s is not None and time.monotonic() - start >= job.deadline_s and not first:
            return False
        if scfg.trials is None:
            return True
        from optuna.trial import TrialState

        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))  # other workers' trials
        return _finished(study) + running < scfg.trials

    while budget_left():  # one trial at a time: the budget is checked before each trial starts
        study.optimize(objective, n_trials=1, callbacks=[after], gc_after_trial=True)
    return ran


def progress_line(study, trial, scfg: SearchConfig, spent: float) -> str:
    """One line after a trial: its outcome, trials done, best so far, budget left."""
    done = _finished(study)
    state = trial.state.name.lower()
    what = (
        f"value {trial.value:.5f}"
        if trial.value is not None
        else (trial.user_attrs.get("note") or f"at epoch {trial.user_attrs.get('epochs', '?')}")
    )
    t = trial.user_attrs.get("t")
    best = _best(study)
    left = []
    if scfg.trials is not None:
        left.append(f"{max(scfg.trials - done, 0)} trials")
    if scfg.timeout is not None:
        rest = max(scfg.timeout - spent, 0.0)
        left.append(f"{rest:.1f} s" if rest < 10 else f"{rest:.0f} s")
    return (
        f"search: trial {trial.number} {state} ({what}{f', T {t:.3g}' if t is not None else ''}); "
        f"{done} done{f' of {scfg.trials}' if scfg.trials else ''}; best "
        f"{f'{best.value:.5f} (trial {best.number})' if best else 'none yet'}; left: {', '.join(left)}"
    )


def trial_rows(study, space: dict[str, Param]) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, chosen T, epochs, seconds, settings, note."""
    rows = []
    keys = list(space)
    for t in study.get_trials(deepcopy=False):
        seconds = t.user_attrs.get("seconds")
        if seconds is None and t.datetime_start and t.datetime_complete:
            seconds = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "t": t.user_attrs.get("t"),
                "epochs": t.user_attrs.get("epochs"),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "seconds": seconds,
                **{k: t.params.get(k) for k in keys},
                "note": t.user_attrs.get("note", ""),
            }
        )
    return rows


def write_trials_csv(path: Path, study, space: dict[str, Param]) -> None:
    rows = trial_rows(study, space)
    cols = ["number", "state", "value", "t", "epochs", "best_epoch", "seconds", *space, "note"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def plot_search(study, space: dict[str, Param], out: Path, metric: str) -> None:
    """``value_vs_time.png`` (each trial's validation metric at its end, and the best so far) and
    ``settings.png`` (the metric against each setting), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    from lightgode.atomic import write_png

    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    if not trials:
        return
    t0 = min(t.datetime_start for t in trials if t.datetime_start is not None)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    label = f"validation {metric}"

    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    when = lambda t: (t.datetime_complete - t0).total_seconds()  # noqa: E731
    if pruned:
        ax.scatter(
            [when(t) for t in pruned],
            [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
            marker="x",
            color="tab:gray",
            label="pruned (last reported)",
        )
    if done:
        done = sorted(done, key=when)
        ax.scatter([when(t) for t in done], [t.value for t in done], color="tab:blue", label="complete")
        best, xs, ys = -math.inf, [], []
        for t in done:
            best = max(best, t.value)
            xs.append(when(t))
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
    write_png(out / "value_vs_time.png", fig)

    keys = list(space)
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), layout="constrained", squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs = [t.params[key] for t in done if key in t.params]
        ys = [t.value for t in done if key in t.params]
        ax.scatter(xs, ys, color="tab:blue", s=14)
        if space[key].log:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(key)
        ax.set_ylabel(label, fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    write_png(out / "settings.png", fig)


def _best_run(
    out: Path,
    best_dir: Path,
    study,
    base: RunConfig,
    space: dict[str, Param],
    split,
    info_extra: dict[str, Any],
    show_progress: bool,
) -> dict[str, dict[str, float]]:
    """Write the best trial as a complete run directory; its test metrics are computed here, and only here."""
    from lightgode.core.train import TrainResult
    from lightgode.models import model_from_weights
    from lightgode.runs.store import MARKER, load_weights, read_json
    from lightgode.runs.workflow import evaluate_model, peak_rss_mb, run_info, write_run

    t_start = time.perf_counter()
    best = _best(study)
    saved = _trial_dir(out, best.number)
    try:
        if not (saved / MARKER).is_file():
            raise RunDirError(f"{saved} is incomplete")
        record = read_json(saved / "trial.json")
        cfg = RunConfig.from_stored(record["config"])
        user, item = load_weights(saved / "weights.safetensors")
        model = model_from_weights(cfg, user, item, split.train)
        model.result_ = TrainResult(**record["result"])
        tune = record.get("tune")
        t_fit = 0.0
    except (RunDirError, KeyError, TypeError, ConfigError):  # not kept (or damaged): train the setting again
        log.warning("the weights of trial %d were not kept; training its settings again", best.number)
        outcome = run_trial(base.override(nest(best.params)), split)
        model, cfg, tune = outcome.model, outcome.cfg, outcome.tune
        t_fit = time.perf_counter() - t_start
    t0 = time.perf_counter()
    metrics = evaluate_model(model, split, show_progress=show_progress)  # test read once, after every choice
    info = run_info(
        cfg,
        split,
        model.result_,
        seconds={"fit": t_fit, "evaluate": time.perf_counter() - t0},
        t_start=t_start,
        peak_mb=peak_rss_mb(),
    )
    info["search"] = {"trial": best.number, "value": best.value, "params": best.params, **info_extra}
    if tune is not None:
        info["tune"] = tune
    write_run(best_dir, cfg, split, model, metrics, info, overwrite=True)
    for d in (out / "trials").glob("*"):  # only the best trial's weights are worth their disk
        if d.is_dir() and d.name != str(best.number):
            shutil.rmtree(d, ignore_errors=True)
    return metrics


def search(
    base: RunConfig | None,
    out: str | os.PathLike,
    *,
    space: dict[str, Param] | None = None,
    config: SearchConfig = SearchConfig(),
    resume: bool = False,
    overwrite: bool = False,
    budget: dict[str, Any] | None = None,
    best_dir: str | os.PathLike | None = None,
    env_data_dir: str | None = None,
    quiet: bool = False,
    show_progress: bool = False,
) -> SearchSummary:
    """Search ``base``'s training settings over ``space`` (default: the model's ``DEFAULT_SPACES``) within
    ``config``'s budget; write the search directory ``out`` and the best trial's run directory (``out/best`` unless
    ``best_dir``).

    ``resume=True`` continues the search in ``out`` with its stored settings (``base``, ``space`` and ``config`` are
    ignored; ``budget`` may change its ``trials``, ``timeout`` and ``workers``): trials that a killed session left
    running are marked failed and re-run within the budget; finished trials are kept.
    """
    import optuna

    out = Path(out)
    if resume:
        stored = _read_search(out)
        try:
            base = RunConfig.from_stored(stored["base"])
            space = _space_from(stored["space"])
            config = replace(SearchConfig(**stored["search"]), **(budget or {}))
        except (ConfigError, TypeError) as exc:
            raise RunDirError(f"{out / 'search.json'} holds impossible settings: {exc}") from None
        best_dir = best_dir or stored.get("best_dir")
    else:
        if base is None:
            raise ConfigError("a new search needs its base settings")
        if base.model not in SEARCHED_MODELS:
            raise ConfigError(f"search tunes {', '.join(SEARCHED_MODELS)}; {base.model!r} has no training to search")
        config = replace(config, **(budget or {}))
        space = space if space is not None else build_space(base.model)
        check_space(base, space)
        if (out / "search.json").is_file() and not overwrite:
            raise OutputError(
                f"search directory {out} already exists; continue it with --resume {out}, or pass "
                f"--overwrite to start again"
            )
        check_target(out, overwrite=overwrite, kind="dir")
    best_path = Path(best_dir) if best_dir is not None else out / "best"
    if best_dir is not None and not resume:
        check_target(best_path, overwrite=overwrite, kind="dir")
    out.parent.mkdir(parents=True, exist_ok=True)
    with target_lock(out):
        if not resume and out.exists():
            check_target(out, overwrite=overwrite, kind="dir")
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(
            out / "search.json",
            {
                "base": base.to_dict(),
                "space": {k: p.to_dict() for k, p in space.items()},
                "search": asdict(config),
                "best_dir": None if best_dir is None else str(Path(best_dir).absolute()),
            },
        )
        url = storage_url(out, config.storage)
        shared = config.storage is not None
        storage = _storage(url, shared)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize", load_if_exists=True)
        if resume and not shared:
            lost = fail_interrupted(study)
            if lost:
                log.warning("%d trial(s) left running by the interrupted search marked failed; re-run", lost)
        spent = float(study.user_attrs.get("seconds_spent", 0.0))
        left = None if config.timeout is None else config.timeout - spent
        n_before = len(study.get_trials(deepcopy=False))
        threads = base.threads
        if config.workers > 1 and threads is None:
            threads = max(1, (os.cpu_count() or 1) // config.workers)
        jobs = [
            _Job(
                str(out),
                url,
                shared,
                base.to_dict(),
                {k: p.to_dict() for k, p in space.items()},
                asdict(config),
                n_before + w,
                left,
                threads,
                env_data_dir,
                quiet,
                spent,
            )
            for w in range(config.workers)
        ]
        from lightgode.runs.workflow import prepare_split

        split = prepare_split(base.data, base.seed, env_data_dir=env_data_dir)
        if config.workers == 1:
            run_worker(jobs[0], split)
        else:
            _run_parallel(jobs)
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        finished = _finished(study)
        best = _best(study)
        write_trials_csv(out / "trials.csv", study, space)
        plot_search(study, space, out, base.eval.valid_metric)
        if best is None:
            raise FitError(
                f"no trial completed within the budget ({finished} finished, all pruned); raise "
                f"the budget and continue with --resume {out}"
            )
        extra = {
            "trials": finished,
            "seconds": float(study.user_attrs.get("seconds_spent", 0.0)),
            "directory": str(out),
        }
        metrics = _best_run(out, best_path, study, base, space, split, extra, show_progress)
    return SearchSummary(out, best_path, best.number, float(best.value), dict(best.params), finished, metrics)


def _run_parallel(jobs: list[_Job]) -> None:
    """Each job in its own process (spawned: a clean torch in each); the first error is raised here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_worker, job) for job in jobs]
        errors = []
        for f in futures:
            try:
                f.result()
            except LightGODEError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def _read_search(out: Path) -> dict[str, Any]:
    from lightgode.runs.store import read_json

    if not (out / "search.json").is_file():
        raise RunDirError(f"no search to resume at {out} (no {out / 'search.json'})")
    raw = read_json(out / "search.json")
    if not isinstance(raw, dict) or not {"base", "space", "search"} <= set(raw):
        raise RunDirError(f"{out / 'search.json'} is damaged: it needs base, space and search")
    return raw
