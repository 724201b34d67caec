"""The side-by-side benchmark: every model through the same data, split, evaluation and run directory.

Each (protocol, dataset, model, seed) is one complete run directory
``<out_dir>/<protocol>/<dataset>/<model>/seed<seed>``; a complete one is skipped, an interrupted one continues
from its checkpoint, so a benchmark spanning days resumes where it stopped. ``mf-conv`` reuses the trained
``mf-bpr`` run of the same seed (post-training layers need no training) when that run exists.

Tuning is on validation only: each model's small grid of post-training settings (layers, T, filter weights) is
picked on validation NDCG@20 inside ``fit``; trained settings come from :func:`~lightgode.bench.settings.model_settings`
(documented in docs/results/benchmark.md). A grid of trained settings (``grid``: learning rate, BPR regularisation, DirectAU
gamma) trains one run per point, ``seed<seed>-lr0.002`` and so on beside ``seed<seed>`` (the model's own settings);
the report keeps, per seed, the point with the best validation NDCG@20, and ``mf-conv`` is built on the mf-bpr point
so chosen. Test metrics are read once, at the best validation epoch.

A run directory can be lost (runs/ is not kept with the code) while its row stays in the report's CSV: a run
recorded there with the benchmark's settings counts as complete, so a fresh machine trains only what is missing and
a new grid point is weighed against the recorded ones.

LightGODE's horizon T costs no retraining, so besides the paper's T each chosen LightGODE run gets a copy with T
chosen on validation (``seed<seed>.tuned``, rows "lightgode (T on validation)"), as mf-conv chooses its layers.

One module per job:

- ``settings``: the grid and the settings of each run, run-directory names;
- ``ledger``: which runs count as made (complete on disk, or recorded in an earlier report's CSV);
- ``execute``: one run, in this process or a fresh one, under the run's lock;
- ``runner``: the run loop (:func:`run_benchmark`), with the refits and the copies with T on validation;
- ``collect``: rows from the run directories, the choice of grid point per seed, means over seeds;
- ``report``: docs/results/benchmark.md, benchmark.csv and the plots;
- ``analyses``: the paper's two analyses (convolution in training versus at test; embedding discrepancy).
"""

from __future__ import annotations

from lightgode.bench.collect import aggregate, budget_spent, collect, select_variants
from lightgode.bench.ledger import read_recorded, with_recorded
from lightgode.bench.report import plus_minus, write_report
from lightgode.bench.runner import BenchmarkProgress, run_benchmark
from lightgode.bench.settings import BenchmarkConfig, run_config

__all__ = [
    "BenchmarkConfig",
    "BenchmarkProgress",
    "aggregate",
    "budget_spent",
    "collect",
    "plus_minus",
    "read_recorded",
    "run_benchmark",
    "run_config",
    "select_variants",
    "with_recorded",
    "write_report",
]
