"""The training loop's early stopping, with validation every epoch and every N epochs (a scripted metric)."""

import numpy as np
import pytest
import torch

from lightgode.config import TrainConfig
from lightgode.errors import ConfigError
from lightgode.train import fit


class OneWeight(torch.nn.Module):
    """A single weight that every step pushes by Adam; its value tells the epochs apart."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        self.w.grad = torch.ones(1)
        return torch.zeros(())


def scripted(model: OneWeight, values: dict[int, float], seen: list[tuple[int, float]]):
    """A validate() whose metric comes from ``values`` by epoch, the epoch read off the weight; calls go to ``seen``."""
    def validate() -> dict[str, float]:
        epoch = round(-float(model.w.detach()) / 0.1)  # lr 0.1, one step per epoch, Adam moves the weight by -lr each step
        seen.append((epoch, float(model.w.detach())))
        return {"ndcg@20": values.get(epoch, 0.0)}
    return validate


def run(valid_every: int, patience: int, epochs: int, values: dict[int, float]):
    model, seen = OneWeight(), []
    cfg = TrainConfig(lr=0.1, batch_size=4, epochs=epochs, patience=patience, valid_every=valid_every)
    pairs = np.zeros(4, dtype=np.int64)  # one step per epoch
    res = fit(model, pairs, pairs, cfg, seed=0, validate=scripted(model, values, seen))
    return model, seen, res


def test_patience_counts_epochs_since_the_best():
    values = {e: 0.1 * e for e in range(1, 6)} | {e: 0.0 for e in range(6, 30)}  # rises to epoch 5, then drops
    model, seen, res = run(valid_every=1, patience=3, epochs=30, values=values)
    assert [e for e, _ in seen] == list(range(1, 9))
    assert (res.best_epoch, res.epochs_run, res.stopped_early) == (5, 8, True)
    assert float(model.w.detach()) == pytest.approx(dict(seen)[5])  # the best epoch's state is restored


def test_validation_every_n_epochs_and_after_the_last():
    values = {3: 0.1, 6: 0.3, 9: 0.2, 12: 0.25, 15: 0.1}
    model, seen, res = run(valid_every=3, patience=6, epochs=30, values=values)
    assert [e for e, _ in seen] == [3, 6, 9, 12]  # 12 - 6 = 6 epochs since the best: stop
    assert (res.best_epoch, res.epochs_run, res.stopped_early) == (6, 12, True)
    assert float(model.w.detach()) == pytest.approx(dict(seen)[6])
    assert [("valid_ndcg@20" in row) for row in res.history] == [e % 3 == 0 for e in range(1, 13)]
    _, seen, res = run(valid_every=3, patience=10, epochs=7, values={7: 1.0})
    assert [e for e, _ in seen] == [3, 6, 7] and res.best_epoch == 7 and not res.stopped_early


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_valid_every_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="valid_every"):
        TrainConfig(valid_every=bad)
