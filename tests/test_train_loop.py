"""The training loop's early stopping, with validation every epoch and every N epochs (a scripted metric)."""

import numpy as np
import pytest
import torch

from lightgode.core.config import TrainConfig
from lightgode.core.train import fit
from lightgode.errors import ConfigError

from conftest import fit_whole_and_resumed


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
        # lr 0.1, one step per epoch, Adam moves the weight by -lr each step
        epoch = round(-float(model.w.detach()) / 0.1)
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


class Recorder(OneWeight):
    """Records the (user, item) pairs of every step."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[np.ndarray, np.ndarray]] = []

    def compute_grads(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        self.batches.append((users.numpy().copy(), items.numpy().copy()))
        return super().compute_grads(users, items)


def record(sampling: str, users: np.ndarray, items: np.ndarray, epochs: int, seed: int = 0):
    model = Recorder()
    fit(model, users, items, TrainConfig(batch_size=8, epochs=epochs, sampling=sampling), seed=seed)
    return model.batches


def skewed_pairs():
    """User 0 has 10 items, users 1..9 one each, user 10 none (absent): 19 pairs."""
    users = np.array([0] * 10 + list(range(1, 10)), dtype=np.int64)
    items = np.array(list(range(10)) + list(range(9)), dtype=np.int64)
    return users, items


def test_pair_sampling_visits_every_pair_once_per_epoch():
    users, items = skewed_pairs()
    batches = record("pairs", users, items, epochs=1)
    seen = sorted(zip(*map(np.concatenate, zip(*batches))))
    assert seen == sorted(zip(users, items))


def test_user_sampling_draws_users_uniformly_then_their_items():
    users, items = skewed_pairs()
    batches = record("users", users, items, epochs=1000)
    u, i = map(np.concatenate, zip(*batches))
    assert len(u) == 1000 * len(users)  # as many draws per epoch as pairs, in batches of 8
    assert [len(b[0]) for b in batches[:3]] == [8, 8, 3]
    owned = set(zip(users.tolist(), items.tolist()))
    assert all(pair in owned for pair in zip(u.tolist(), i.tolist()))  # only a user's own items
    share = np.bincount(u, minlength=11) / len(u)
    assert share[10] == 0  # a user without pairs is never drawn
    np.testing.assert_allclose(share[:10], 0.1, atol=0.01)  # uniform over users, not over pairs (user 0: 0.53)
    mine = np.bincount(i[u == 0], minlength=10) / (u == 0).sum()
    np.testing.assert_allclose(mine, 0.1, atol=0.035)  # user 0's items uniformly
    assert [b[0].tolist() for b in batches[:6]] == [b[0].tolist() for b in record("users", users, items, 2)]
    assert [b[0].tolist() for b in batches[:6]] != [b[0].tolist() for b in record("users", users, items, 2, seed=1)]


def test_unknown_sampling_is_refused():
    with pytest.raises(ConfigError, match="sampling"):
        TrainConfig(sampling="items")


def test_user_sampling_resumes_with_the_same_draws(tmp_path):
    users, items = skewed_pairs()
    cfg = TrainConfig(batch_size=8, epochs=4, sampling="users")
    whole, resumed, _ = fit_whole_and_resumed(Recorder, users, items, cfg, 3, tmp_path)
    again = whole.batches[3:]  # from epoch 2 on (3 steps an epoch): the interrupt came before epoch 2's checkpoint
    assert [b[0].tolist() for b in resumed.batches] == [b[0].tolist() for b in again]
    assert [b[1].tolist() for b in resumed.batches] == [b[1].tolist() for b in again]


def test_stop_when_ends_training_keeping_the_best_epoch_across_a_resume(tmp_path):
    """A wall-time cap (``stop_when``) after a resume sees the epochs before the interruption: the best of them
    is kept, and the history and epoch count cover the whole run."""
    from lightgode.core.checkpoint import Checkpoint
    from lightgode.models.base import capped_fit

    from conftest import stop_at

    class Pairs:
        users = items = np.zeros(4, dtype=np.int64)

    values = {1: 0.9}  # the best epoch comes before the interruption
    cfg = TrainConfig(lr=0.1, batch_size=4, epochs=6, patience=10)
    ckpt = Checkpoint(tmp_path / "ckpt" / "state.safetensors")
    model, seen = OneWeight(), []
    with pytest.raises(KeyboardInterrupt):
        capped_fit(
            model,
            Pairs(),
            cfg,
            seed=0,
            validate=scripted(model, values, seen),
            valid_metric="ndcg@20",
            max_seconds=3600,
            on_epoch=stop_at(3),
            checkpoint=ckpt,
        )
    model, seen = OneWeight(), []
    res, capped = capped_fit(
        model,
        Pairs(),
        cfg,
        seed=0,
        validate=scripted(model, values, seen),
        valid_metric="ndcg@20",
        max_seconds=1e-9,
        checkpoint=ckpt,
    )
    assert capped and not res.stopped_early and not seen  # the budget was spent before the interruption
    assert (res.best_epoch, res.best_valid, res.epochs_run) == (1, {"ndcg@20": 0.9}, 2)
    assert [row["epoch"] for row in res.history] == [1, 2]
    assert float(model.w.detach()) == pytest.approx(-0.1)  # epoch 1's weight, restored from the checkpoint


def test_without_validation_the_last_epoch_is_kept():
    class Noisy(OneWeight):
        """The loss rises after epoch 1, so 'lowest loss' and 'last' differ."""

        calls = 0

        def compute_grads(self, users, items):
            super().compute_grads(users, items)
            self.calls += 1
            return torch.tensor(float(self.calls))

    model = Noisy()
    pairs = np.zeros(4, dtype=np.int64)
    res = fit(model, pairs, pairs, TrainConfig(lr=0.1, batch_size=4, epochs=4), seed=0)
    assert res.best_epoch == 4 and res.epochs_run == 4
    assert float(model.w.detach()) == pytest.approx(-0.4)
