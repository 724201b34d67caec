"""Dataclass configs for every knob, one source of defaults, and the paper's per-dataset settings."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from lightgode.core.evaluate import EvalConfig
from lightgode.core.ode import ODEConfig
from lightgode.errors import ConfigError
from lightgode.fieldtypes import check_fields, shown
from lightgode.names import MODEL_NAMES, OPTIMIZERS, PAPER_SETTINGS, SAMPLINGS, SPLIT_KINDS  # noqa: F401


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the interactions come from and how they are split (the ``data`` section of a :class:`RunConfig`).

    Every field is a keyword argument with the default shown beside it in the source; an impossible value raises
    ConfigError at construction.

    Parameters
    ----------
    data : str
        A named dataset (amazon-beauty, amazon-toys-games, gowalla) or the path of an interaction file (the
        training file when ``test`` is given).
    test : str, optional
        A test file of one's own, read like ``data`` with ids shared with it (needs split "given").
    format : str
        Reader of a file: auto (from the file name), lightgcn, csv, tsv, parquet, recbole.
    data_dir : str, optional
        Folder searched first for named datasets.
    user_col, item_col : str
        Id columns of CSV/TSV/Parquet files.
    rating_col : str, optional
    rating_threshold : float, optional
        Keep rows with rating >= threshold (needs ``rating_col``).
    timestamp_col : str, optional
        Orders rows in time (numbers or ISO dates), for temporal splits.
    max_id_length : int
        A longer user or item id is refused.
    skip_bad_rows : bool
        Skip and count bad rows instead of refusing the file.
    kcore : int
        Iterative k-core on users and items before splitting; 0 disables.
    split : str
        random (per user, seeded), temporal (per user, by row order), loo (leave one out), given (fixed files).
    ratios : (float, float, float)
        Train, validation and test shares of the ratio splits, summing to 1.

    Raises
    ------
    ConfigError
        An impossible value (negative kcore, unknown split, ratios not summing to 1, ...).
    """

    data: str = "amazon-beauty"  # a named dataset or a path to an interaction file (the training file with test)
    test: str | None = None  # a test file of one's own, read like data, ids shared with it (needs split "given")
    format: str = "auto"  # reader: auto, lightgcn, csv, tsv, parquet, recbole
    data_dir: str | None = None  # where named datasets are looked up first
    user_col: str = "user"  # user column of CSV/TSV/Parquet files
    item_col: str = "item"  # item column of CSV/TSV/Parquet files
    rating_col: str | None = None  # optional rating column
    rating_threshold: float | None = None  # keep rows with rating >= threshold
    timestamp_col: str | None = None  # optional timestamp column (orders rows for temporal splits)
    max_id_length: int = 256  # CSV/TSV/Parquet/RecBole/LightGCN: a longer user or item id is refused
    skip_bad_rows: bool = False  # tables: skip (and count) ragged rows and missing or too long ids
    kcore: int = 5  # iterative k-core on users and items; 0 disables
    split: str = "random"  # random (per-user ratio), temporal, loo (leave-one-out), given (fixed files)
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/valid/test shares for ratio splits

    READER_OPTIONS = (
        "user_col",
        "item_col",
        "rating_col",
        "rating_threshold",
        "timestamp_col",
        "max_id_length",
        "skip_bad_rows",
    )
    """The fields that are options of a file reader (``lightgode.data.readers``)."""

    def reader_options(self) -> dict[str, Any]:
        """The reader options that differ from their defaults.

        Returns
        -------
        dict of str to value
            Keyword options for ``lightgode.data.readers.read_interactions``; a reader that has no such option
            (LightGCN's lists have no ``user_col``) is never handed one it would refuse.
        """
        default = DataConfig()
        return {k: getattr(self, k) for k in self.READER_OPTIONS if getattr(self, k) != getattr(default, k)}

    def __post_init__(self) -> None:
        check_fields(self, "data")
        if self.kcore < 0:
            raise ConfigError(f"kcore must be >= 0, got {self.kcore}")
        if isinstance(self.max_id_length, bool) or not isinstance(self.max_id_length, int) or self.max_id_length < 1:
            raise ConfigError(f"max_id_length must be an integer >= 1, got {self.max_id_length!r}")
        if self.split not in SPLIT_KINDS:
            raise ConfigError(f"unknown split {self.split!r}; choose one of {', '.join(SPLIT_KINDS)}")
        if self.test is not None and self.split != "given":
            raise ConfigError(f"a test file (data.test = {self.test!r}) needs split 'given', not {self.split!r}")
        r = tuple(float(x) for x in self.ratios)
        if len(r) != 3 or any(x < 0 or not math.isfinite(x) for x in r) or abs(sum(r) - 1) > 1e-6 or r[0] <= 0:
            raise ConfigError(f"ratios must be three shares >= 0 summing to 1 with train > 0, got {list(self.ratios)}")
        object.__setattr__(self, "ratios", r)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How embeddings are trained (the ``train`` section of a :class:`RunConfig`).

    Parameters
    ----------
    dim : int
        Embedding dimension d.
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam (L2) weight decay.
    gamma : float
        Weight of the uniformity term of the DirectAU loss.
    batch_size : int
        Observed pairs per step.
    epochs : int
        Maximum number of epochs.
    patience : int
        Epochs without validation improvement before stopping.
    valid_every : int
        Validate every N epochs (and after the last).
    optimizer : str
        adam (the paper's), dense-adam (torch's) or sparse-adam.
    sampling : str
        pairs (every pair once per epoch) or users (LightGCN's user-uniform draws).
    device : str
        cpu, cuda, cuda:N or auto (cuda when there is one).

    Raises
    ------
    ConfigError
        An impossible value (dim <= 0, lr <= 0, unknown optimizer or device name, ...).
    """

    dim: int = 64  # embedding dimension
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam (L2) weight decay
    gamma: float = 0.5  # uniformity weight of the DirectAU loss
    batch_size: int = 256  # observed pairs per step
    epochs: int = 300  # maximum number of epochs
    patience: int = 10  # epochs without validation improvement before stopping
    valid_every: int = 1  # validate every N epochs (and after the last); patience still counts epochs
    optimizer: str = "adam"  # "adam" (as the paper), "dense-adam" (torch's) or "sparse-adam" (a lazier optimiser)
    sampling: str = "pairs"  # "pairs" (every pair once per epoch) or "users" (LightGCN's user-uniform draws)
    device: str = "cpu"  # where training and validation run: cpu, cuda, cuda:N, or auto (cuda when there is one)

    def __post_init__(self) -> None:
        check_fields(self, "train")
        checks = [
            ("dim", self.dim > 0 and int(self.dim) == self.dim),
            ("lr", 0 < self.lr < math.inf),
            ("weight_decay", 0 <= self.weight_decay < math.inf),
            ("gamma", 0 <= self.gamma < math.inf),
            ("batch_size", self.batch_size >= 2 and int(self.batch_size) == self.batch_size),
            ("epochs", self.epochs >= 1 and int(self.epochs) == self.epochs),
            ("patience", self.patience >= 1 and int(self.patience) == self.patience),
            ("valid_every", self.valid_every >= 1 and int(self.valid_every) == self.valid_every),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"impossible value for {name}: {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling {self.sampling!r}; choose one of {', '.join(SAMPLINGS)}")
        if self.optimizer == "sparse-adam" and self.weight_decay > 0:
            raise ConfigError("sparse-adam applies no weight decay; set weight_decay to 0 or use adam")
        check_device_name(self.device)


DEVICE_NAME = re.compile(r"cpu|auto|cuda(:\d+)?")


def check_device_name(device: str) -> None:
    """A ConfigError unless ``device`` is cpu, cuda, cuda:N or auto (the devices training supports)."""
    if not isinstance(device, str) or not DEVICE_NAME.fullmatch(device):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """Settings of the baseline models (pop, mf-bpr, lightgcn, mf-conv, gf-cf, bspm); LightGODE ignores them.

    A tuple of candidates is a validation grid: the model picks the best on validation NDCG@20 after training.
    """

    layers: tuple[int, ...] = (3,)  # lightgcn: propagation layers (first value); mf-conv: post-training layer grid
    reg: float = 1e-4  # BPR models: L2 weight on the batch's (layer-0) embeddings, as LightGCN's reg
    conv_base: str = "mf-bpr"  # mf-conv: the MF trained before the layers, "mf-bpr" or "directau"
    alpha: tuple[float, ...] = (0.3,)  # gf-cf: weight grid of the ideal low-pass part
    rank: int = 256  # gf-cf / bspm: rank of the truncated SVD (the ideal low-pass filter)
    idl_beta: tuple[float, ...] = (0.2,)  # bspm: weight grid of the ideal low-pass term
    t_blur: float = 1.0  # bspm: horizon of the blurring ODE
    steps_blur: int = 1  # bspm: Euler steps of the blurring ODE
    t_sharp: tuple[float, ...] = (2.5,)  # bspm: horizon grid of the sharpening ODE
    steps_sharp: int = 1  # bspm: steps of the sharpening ODE
    sharp_solver: str = "rk4"  # bspm: fixed-step solver of the sharpening ODE, euler or rk4 (BSPM's Gowalla setting)
    max_train_seconds: float = 0.0  # mf-bpr / lightgcn: wall-time cap of training (0: none); capped runs are marked
    init_std: float = 0.0  # mf-bpr / lightgcn: embeddings drawn from N(0, init_std) (LightGCN's code: 0.1); 0: Xavier

    def __post_init__(self) -> None:
        check_fields(self, "baseline")  # a single number where a grid is expected is a grid of one
        for name in ("layers", "alpha", "idl_beta", "t_sharp"):
            if not getattr(self, name):
                raise ConfigError(f"{name} needs at least one value")
        checks = [
            ("layers", all(int(x) == x and 0 <= x <= 64 for x in self.layers)),
            ("reg", 0 <= self.reg < math.inf),
            ("conv_base", self.conv_base in ("mf-bpr", "directau")),
            ("alpha", all(0 <= x < math.inf for x in self.alpha)),
            ("rank", self.rank >= 1),
            ("idl_beta", all(0 <= x < math.inf for x in self.idl_beta)),
            ("t_blur", 0 <= self.t_blur < math.inf),
            ("init_std", 0 <= self.init_std < math.inf),
            ("steps_blur", self.steps_blur >= 1),
            ("t_sharp", all(0 <= x < math.inf for x in self.t_sharp)),
            ("steps_sharp", self.steps_sharp >= 1),
            ("sharp_solver", self.sharp_solver in ("euler", "rk4")),
            ("max_train_seconds", 0 <= self.max_train_seconds < math.inf),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"impossible value for baseline.{name}: {getattr(self, name)}")


SEED_LIMIT = 2**63  # seeds go to numpy (>= 0) and torch (64-bit)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Every setting of a run, in sections; what ``config.json`` of a run directory holds.

    Parameters
    ----------
    data : DataConfig
    train : TrainConfig
    ode : ODEConfig
        The post-training ODE (horizon T, solver).
    eval : EvalConfig
        Cut-offs K, evaluation batch size, the validation metric.
    baseline : BaselineConfig
        Settings of the baseline models; LightGODE ignores them.
    model : str
        A model of the registry: lightgode, directau, pop, mf-bpr, lightgcn, mf-conv, gf-cf, bspm.
    seed : int
        Seeds splitting, initialisation and batch order.
    threads : int, optional
        torch intra-op threads; None keeps torch's default.
    t_auto : bool
        After training, choose T on validation (``ode.t`` then serves early stopping only).

    Raises
    ------
    ConfigError
        An unknown model, a seed outside 0..2**63-1, threads < 1.

    Examples
    --------
    >>> cfg = RunConfig(data=DataConfig(data="ratings.csv", kcore=0), train=TrainConfig(epochs=5))
    >>> cfg.override({"ode": {"t": 2.0}, "seed": 7}).ode.t
    2.0
    """

    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ode: ODEConfig = field(default_factory=ODEConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    model: str = "lightgode"  # model name in the registry
    seed: int = 2020  # seeds splitting, initialisation and batch order
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    t_auto: bool = False  # after training, choose T on validation (tune.py); ode.t serves early stopping only

    def __post_init__(self) -> None:
        check_fields(self)
        if self.model not in MODEL_NAMES:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigError(f"seed must be an integer in 0..2**63-1, got {self.seed}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be an integer >= 1 (or unset for torch's default), got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as nested plain values, as ``config.json`` stores them.

        Returns
        -------
        dict
            ``{"data": {...}, "train": {...}, "ode": {...}, "eval": {...}, "baseline": {...}, "model": ...,
            "seed": ..., "threads": ..., "t_auto": ...}``; :meth:`from_dict` reads it back.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """The defaults overridden by ``d`` (the inverse of :meth:`to_dict`; sections may be partial).

        Parameters
        ----------
        d : dict
            Nested settings, e.g. ``{"train": {"epochs": 5}, "model": "directau"}``.

        Returns
        -------
        RunConfig

        Raises
        ------
        ConfigError
            An unknown key or a value of the wrong type or range, naming the key.
        """
        return cls().override(d)

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> RunConfig:
        """A run's settings as written (``config.json``, a checkpoint's), its "versions" record left out; a setting
        added since the run was made takes its default.

        Parameters
        ----------
        d : dict
            A stored ``config.json``, as read with ``json.load``.

        Returns
        -------
        RunConfig

        Raises
        ------
        ConfigError
            ``d`` is not a table, or holds an unknown or impossible setting.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"expected a table of settings, got {shown(d)}")
        return cls.from_dict({k: v for k, v in d.items() if k != "versions"})

    def override(self, d: dict[str, Any]) -> RunConfig:
        """A copy with nested settings replaced: ``{"train": {"lr": 0.01}, "seed": 1}``.

        Parameters
        ----------
        d : dict
            Top-level settings and sections; a section's dict replaces only the fields it names.

        Returns
        -------
        RunConfig
            A new config; ``self`` is unchanged.

        Raises
        ------
        ConfigError
            Unknown keys and values of the wrong type, naming the key (``ode.t: expected a number, got "abc"``).
        """
        sections = {
            "data": DataConfig,
            "train": TrainConfig,
            "ode": ODEConfig,
            "eval": EvalConfig,
            "baseline": BaselineConfig,
        }
        if not isinstance(d, dict):
            raise ConfigError(f"settings must be a table of values, got {shown(d)}")
        top = {f.name for f in fields(self)}
        out: dict[str, Any] = {}
        for key, value in d.items():
            if key not in top:
                raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(top))}")
            if key in sections:
                if not isinstance(value, dict):
                    raise ConfigError(f"{key}: expected a table of settings, got {shown(value)}")
                known = {f.name for f in fields(sections[key])}
                bad = sorted((k for k in value if k not in known), key=str)
                if bad:
                    raise ConfigError(f"unknown setting {key}.{bad[0]}; known: {', '.join(sorted(known))}")
                out[key] = replace(getattr(self, key), **value)
            else:
                out[key] = value
        return replace(self, **out)


def paper_overrides(dataset: str) -> dict[str, Any]:
    """The paper's T, gamma and weight decay for a named dataset, as an ``override`` dict ({} if unnamed)."""
    s = PAPER_SETTINGS.get(dataset)
    if not s:
        return {}
    return {"ode": {"t": s["t"]}, "train": {"gamma": s["gamma"], "weight_decay": s["weight_decay"]}}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON or TOML config file into an ``override`` dict.

    A run's ``config.json`` can be given as it is: its ``versions`` record (package versions, provenance) is not
    a setting and is skipped.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib  # Python >= 3.11

            d = tomllib.loads(text)
        else:
            d = json.loads(text)
    except Exception as exc:  # parse errors of either format
        raise ConfigError(f"cannot parse config file {p}: {str(exc).splitlines()[0]}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"config file {p} must hold a table of settings")
    d.pop("versions", None)
    return d
