import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from lightgode.data.datasets import BUNDLED, bundled_dir

# The real datasets: $LIGHTGODE_DATA when set (as the library looks them up; the GPU machine gets a copy there,
# benchmarks/long_runs/device_long_runs.sh), else ../shared/datasets beside the checkout. Only the few tests that check the
# real files themselves need them; every other test reads the Beauty copy bundled with the package or small
# files made here, so that a clean clone runs them.
SHARED = (
    Path(os.environ["LIGHTGODE_DATA"])
    if os.environ.get("LIGHTGODE_DATA")
    else Path(__file__).resolve().parents[2] / "shared" / "datasets"
)

# Every skip for lack of data says this; under CI (env CI=true) such a skip is a failure (pytest_runtest_makereport).
MISSING_DATA = "real datasets not present"


def on_ci() -> bool:
    """Whether this run is CI's (env CI set to true, as CI services and .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_for_missing_data(what: str):
    """Skip the calling test because ``what`` (a path) is absent; CI turns this skip into a failure."""
    pytest.skip(f"{MISSING_DATA}: {what} is absent (set LIGHTGODE_DATA or put ../shared/datasets beside the checkout)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and on_ci() and MISSING_DATA in str(report.longrepr):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI (CI=true) runs every test on the real datasets; this one would skip: {reason}"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The folder of the real datasets (only for tests of the real files; the test skips without it)."""
    if not SHARED.is_dir():
        skip_for_missing_data(str(SHARED))
    return SHARED


def beauty_lines(lines: int | None = None) -> list[str]:
    """The first ``lines`` lines (all when None) of Amazon-Beauty, from the copy bundled with the package
    (byte for byte ../shared/datasets/amazon-beauty/Beauty.txt, test_data_datasets checks it)."""
    text = gzip.decompress((bundled_dir() / BUNDLED["amazon-beauty"]).read_bytes()).decode()
    return text.splitlines()[:lines]


def beauty_slice_file(tmp_path_factory, lines: int) -> Path:
    """A file with the first ``lines`` lines of Amazon-Beauty (a small slice of real data for tests)."""
    path = tmp_path_factory.mktemp("data") / "beauty_slice.txt"
    path.write_text("\n".join(beauty_lines(lines)) + "\n")
    return path


@pytest.fixture(scope="session")
def beauty_data_dir(tmp_path_factory) -> Path:
    """A data folder (``data_dir``) holding amazon-beauty/Beauty.txt: the bundled copy, decompressed."""
    root = tmp_path_factory.mktemp("beauty_data")
    (root / "amazon-beauty").mkdir()
    (root / "amazon-beauty" / "Beauty.txt").write_text("\n".join(beauty_lines()) + "\n")
    return root


def write_lightgcn_pair(folder: Path, n_users: int, n_items: int, n_train: int, n_test: int, seed: int) -> None:
    """Write folder/train.txt and folder/test.txt in LightGCN's format (``user item item ...``, 0-based ids):
    synthetic data of about ``n_train`` and ``n_test`` distinct (user, item) pairs, users and items drawn with
    a skew as in real data; no pair is in both files, every user and every item id occurs in train."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 0.8, n_users)
    popularity = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.8)
    n = n_train + n_test
    users = rng.choice(n_users, n, p=activity / activity.sum())
    items = rng.choice(n_items, n, p=popularity / popularity.sum())
    in_test = rng.random(n) < n_test / n
    # every user and every item once in train, first (so that a pair drawn again later stays in train)
    users = np.concatenate([np.arange(n_users), rng.integers(0, n_users, n_items), users])
    items = np.concatenate([rng.integers(0, n_items, n_users), np.arange(n_items), items])
    in_test = np.concatenate([np.zeros(n_users + n_items, bool), in_test])
    _, first = np.unique(users.astype(np.int64) * n_items + items, return_index=True)
    keep = np.sort(first)
    users, items, in_test = users[keep], items[keep], in_test[keep]
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.txt", ~in_test), ("test.txt", in_test)):
        u, i = users[rows], items[rows]
        order = np.argsort(u, kind="stable")
        u, i = u[order], i[order]
        cuts = np.flatnonzero(np.diff(u)) + 1
        lines = [" ".join(map(str, [int(g[0]), *row.tolist()])) for g, row in zip(np.split(u, cuts), np.split(i, cuts))]
        (folder / name).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def gowalla_like(tmp_path_factory) -> Path:
    """A data folder whose 'gowalla' is a small synthetic LightGCN-format train/test pair (300 users, 2,000
    items), in place of LightGCN's Gowalla files for tests of the fixed-split workflow."""
    root = tmp_path_factory.mktemp("gowalla_like")
    write_lightgcn_pair(root / "gowalla", n_users=300, n_items=2000, n_train=12000, n_test=3000, seed=7)
    return root


def stop_at(epoch: int):
    """An ``on_epoch`` callback that interrupts training as ``epoch`` ends (before that epoch's checkpoint)."""

    def stop(row):
        if row["epoch"] == epoch:
            raise KeyboardInterrupt

    return stop


def fit_whole_and_resumed(make_model, users, items, config, seed: int, path: Path, *, make_resumed=None):
    """One model trained without a break; another interrupted as epoch 2 ends, and a third (``make_resumed()``,
    default ``make_model()``) resumed from that checkpoint: (whole, resumed, the resumed fit's TrainResult)."""
    from lightgode.core.checkpoint import Checkpoint
    from lightgode.core.train import fit

    whole = make_model()
    fit(whole, users, items, config, seed=seed)
    ckpt = Checkpoint(path / "state.safetensors")
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), users, items, config, seed=seed, checkpoint=ckpt, on_epoch=stop_at(2))
    resumed = (make_resumed or make_model)()
    return whole, resumed, fit(resumed, users, items, config, seed=seed, checkpoint=ckpt)
