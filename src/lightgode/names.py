"""The names a user chooses from: models, solvers, formats, splits, optimisers, samplers, benchmark protocols.

Plain constants with no numerical import, so that the command line can build its parser (and answer ``--help``)
without loading torch, scipy or pandas. The library's registries are keyed by these names; a test checks that
each registry and its name list agree.
"""

from __future__ import annotations

MODEL_NAMES = ("lightgode", "directau", "pop", "mf-bpr", "lightgcn", "mf-conv", "gf-cf", "bspm")
"""Every model of the registry (lightgode.models.MODELS), LightGODE first."""

TRAINING_FREE = ("pop", "gf-cf", "bspm")
"""Models fitted in closed form on the CPU (no epochs, no device)."""

FIXED_SOLVERS = ("euler", "midpoint", "rk4")
ADAPTIVE_SOLVERS = ("dopri5", "dopri8", "bosh3", "adaptive_heun", "fehlberg2")
SOLVERS = FIXED_SOLVERS + ADAPTIVE_SOLVERS + ("exact",)
"""ODE solvers: torchdiffeq's fixed-step and adaptive methods, and the exact solution (matrix exponential)."""

FORMATS = ("lightgcn", "csv", "tsv", "parquet", "recbole")
"""Interaction file formats (lightgode.data.readers.FORMATS holds their readers)."""

SPLIT_KINDS = ("random", "temporal", "loo", "given")

OPTIMIZERS = ("adam", "dense-adam", "sparse-adam")
"""adam: Adam as the reference code, every row's moments and weights move each step; for DirectAU training without
weight decay as lightgode.core.optim.RowAdam (the same weights, up to float rounding, touching only the batch's rows),
otherwise torch's fused Adam.
dense-adam: always torch's fused Adam on dense gradients.
sparse-adam: torch's SparseAdam, only the rows in the batch are updated (lazy moments): a different optimiser,
much cheaper per step on large tables."""

SAMPLINGS = ("pairs", "users")
"""pairs: each epoch visits every training (user, item) pair once, in a seeded random order (RecBole, DirectAU).
users: each step draws its users uniformly at random (with replacement) among users with training items, and one
of each user's items uniformly: LightGCN's and NGCF's reference sampler; an epoch is as many draws as pairs."""

PAPER_SETTINGS: dict[str, dict[str, float]] = {
    "amazon-beauty": {"t": 1.8, "gamma": 0.5, "weight_decay": 1e-8},
    "amazon-toys-games": {"t": 0.8, "gamma": 0.5, "weight_decay": 0.0},
    "gowalla": {"t": 3.0, "gamma": 10.0, "weight_decay": 0.0},
}
"""The paper's settings (LightGODE, CIKM'24, and its reference configs): horizon T, uniformity weight gamma, Adam
weight decay. Applied for a named dataset unless overridden by a config file or a flag."""

BENCH_MODELS = ("pop", "mf-bpr", "directau", "lightgcn", "mf-conv", "lightgode", "gf-cf", "bspm")
"""The benchmark's models, in the report's order."""

PROTOCOLS = ("paper", "lightgcn-gowalla")
"""Benchmark protocols: paper (5-core, per-user random 8:1:1) or lightgcn-gowalla (LightGCN's fixed split)."""
