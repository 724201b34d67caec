import os
from pathlib import Path

import pytest

# The real datasets: $LIGHTGODE_DATA when set (as the library looks them up; the GPU machine gets a copy there,
# benchmarks/device_long_runs.sh), else ../shared/datasets beside the checkout.
SHARED = (Path(os.environ["LIGHTGODE_DATA"]) if os.environ.get("LIGHTGODE_DATA")
          else Path(__file__).resolve().parents[2] / "shared" / "datasets")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/datasets is not present")
    return SHARED


def beauty_slice_file(tmp_path_factory, shared_datasets: Path, lines: int) -> Path:
    """A file with the first ``lines`` lines of Amazon-Beauty (a small slice of real data for tests)."""
    text = (shared_datasets / "amazon-beauty" / "Beauty.txt").read_text().splitlines()[:lines]
    path = tmp_path_factory.mktemp("data") / "beauty_slice.txt"
    path.write_text("\n".join(text) + "\n")
    return path


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
