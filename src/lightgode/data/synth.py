"""Synthetic interaction graphs with power-law degrees, for scale tests (seeded, deduplicated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lightgode.atomic import atomic_path
from lightgode.errors import ConfigError

SYNTH_FORMATS = ("lightgcn", "csv")


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    users: int  # number of user ids (users drawn with no edge do not appear)
    items: int  # number of item ids
    edges: int  # distinct (user, item) pairs to produce
    seed: int = 0  # seed of the numpy generator
    user_exponent: float = 0.8  # Zipf exponent of user activity: weight of the k-th user ~ k^-a
    item_exponent: float = 1.0  # Zipf exponent of item popularity

    def __post_init__(self) -> None:
        for name in ("users", "items", "edges"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v}")
        if self.edges > self.users * self.items // 2:
            raise ConfigError(
                f"edges must be at most half of users x items ({self.users * self.items // 2}) "
                f"for sampling without replacement; got {self.edges}"
            )
        for name in ("user_exponent", "item_exponent"):
            v = getattr(self, name)
            if not np.isfinite(v) or not 0 <= v <= 3:
                raise ConfigError(f"{name} must be in [0, 3], got {v}")


def _zipf_weights(n: int, exponent: float, gen: np.random.Generator) -> np.ndarray:
    """Probabilities ~ rank^-exponent, assigned to ids in a random order (popularity is not id order)."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    w = w[gen.permutation(n)]
    return w / w.sum()


def synth_edges(cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """``cfg.edges`` distinct (user, item) pairs, sorted by user then item; int32 arrays.

    Both ends are drawn from Zipf-like weights, so user and item degrees follow power laws; draws repeat
    until enough distinct pairs exist, then a seeded subset of exactly ``cfg.edges`` is kept.
    """
    gen = np.random.default_rng(cfg.seed)
    pu = _zipf_weights(cfg.users, cfg.user_exponent, gen)
    pi = _zipf_weights(cfg.items, cfg.item_exponent, gen)
    keys = np.zeros(0, dtype=np.int64)
    for _ in range(50):
        need = cfg.edges - len(keys)
        if need <= 0:
            break
        m = int(need * 1.2) + 1000
        new = gen.choice(cfg.users, m, p=pu).astype(np.int64) * cfg.items + gen.choice(cfg.items, m, p=pi)
        keys = np.unique(np.concatenate([keys, new]))
    if len(keys) < cfg.edges:
        raise ConfigError(
            f"could not draw {cfg.edges} distinct pairs with these exponents; lower them or raise users/items"
        )
    keys = np.sort(gen.choice(keys, cfg.edges, replace=False))
    return (keys // cfg.items).astype(np.int32), (keys % cfg.items).astype(np.int32)


def write_edges(users: np.ndarray, items: np.ndarray, path: str | Path, fmt: str = "lightgcn") -> None:
    """Write pairs sorted by user as LightGCN lists (``user item item ...``) or CSV (``user,item``), atomically."""
    if fmt not in SYNTH_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(SYNTH_FORMATS)}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="ascii") as fh:
        if fmt == "csv":
            fh.write("user,item\n")
            np.savetxt(fh, np.column_stack([users, items]), fmt="%d", delimiter=",")
            return
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        item_text = items.astype(str)
        for a, b in zip(starts.tolist(), ends.tolist()):
            fh.write(f"{users[a]} {' '.join(item_text[a:b])}\n")
