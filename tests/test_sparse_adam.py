"""The sparse-adam optimiser option: row-sparse DirectAU gradients, lazy updates, resume, refusals."""

import json

import numpy as np
import pytest
import torch

from lightgode.cli import main
from lightgode.core.config import TrainConfig
from lightgode.errors import ConfigError
from lightgode.models.mf import DirectAUMF

from conftest import beauty_slice_file, fit_whole_and_resumed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The first 2,500 lines of Amazon-Beauty."""
    return beauty_slice_file(tmp_path_factory, 2500)


def _model(seed: int = 0) -> DirectAUMF:
    return DirectAUMF(30, 20, 8, 1.0, generator=torch.Generator().manual_seed(seed))


def test_sparse_gradient_equals_the_dense_one_with_repeated_rows():
    users = torch.tensor([0, 3, 3, 7, 0, 12])
    items = torch.tensor([5, 5, 1, 19, 2, 5])
    dense, sparse = _model(), _model()
    sparse.use_sparse_grads()
    loss_d, loss_s = dense.compute_grads(users, items), sparse.compute_grads(users, items)
    assert float(loss_d) == pytest.approx(float(loss_s))
    for pd, ps in ((dense.user, sparse.user), (dense.item, sparse.item)):
        assert ps.grad.is_sparse
        assert torch.allclose(ps.grad.to_dense(), pd.grad, atol=1e-7)
        assert pd.grad.abs().sum() > 0


def test_sparse_adam_moves_only_the_batch_rows_while_adam_moves_all():
    from lightgode.core.train import make_optimizer

    a, b = (torch.tensor([0, 3, 7]), torch.tensor([5, 1, 19])), (torch.tensor([10, 12]), torch.tensor([2, 4]))
    moved_in_b = {}
    for optimizer in ("dense-adam", "sparse-adam", "adam"):
        m = _model()
        opt = make_optimizer(m, list(m.parameters()), TrainConfig(lr=0.01, optimizer=optimizer))
        m.compute_grads(*a)
        opt.step()
        before = m.user.detach().clone()
        m.compute_grads(*b)
        opt.step()
        if optimizer == "adam":
            opt.flush()  # RowAdam: the rows left behind catch up when read or flushed (the loop flushes each epoch)
        moved_in_b[optimizer] = set(torch.nonzero((m.user.detach() != before).any(dim=1)).flatten().tolist())
    assert moved_in_b["sparse-adam"] == {10, 12}  # lazy: only the batch's rows
    assert moved_in_b["dense-adam"] == {0, 3, 7, 10, 12}  # dense: the first batch's rows move on with their moments
    assert moved_in_b["adam"] == moved_in_b["dense-adam"]


def test_sparse_adam_trains_and_beats_popularity(tmp_path, data):
    args = [
        "train",
        "--data",
        str(data),
        "--optimizer",
        "sparse-adam",
        "--epochs",
        "15",
        "--patience",
        "15",
        "--lr",
        "0.01",
        "--batch-size",
        "128",
        "--threads",
        "1",
        "--quiet",
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    run = tmp_path / "a"
    assert json.loads((run / "config.json").read_text())["train"]["optimizer"] == "sparse-adam"
    metrics = json.loads((run / "metrics.json").read_text())
    pop = tmp_path / "pop"
    assert main(["train", "--data", str(data), "--model", "pop", "--out", str(pop), "--quiet"]) == 0
    assert metrics["valid"]["ndcg@20"] > json.loads((pop / "metrics.json").read_text())["valid"]["ndcg@20"]


def test_sparse_adam_resumes_exactly_from_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 200), rng.integers(0, 20, 200)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.01, optimizer="sparse-adam")
    # the resumed model starts from other weights: the checkpoint's replace them
    whole, resumed, result = fit_whole_and_resumed(
        _model, users, items, cfg, 1, tmp_path, make_resumed=lambda: _model(seed=99)
    )
    assert result.epochs_run == 4
    assert torch.equal(resumed.user, whole.user) and torch.equal(resumed.item, whole.item)


def test_sparse_adam_refusals(tmp_path, data, capsys):
    with pytest.raises(ConfigError, match="weight decay"):
        TrainConfig(optimizer="sparse-adam", weight_decay=1e-4)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        TrainConfig(optimizer="sgd")
    for model in ("lightgcn", "mf-bpr"):  # BPR models' gradients are dense (propagation, autograd)
        rc = main(
            [
                "train",
                "--data",
                str(data),
                "--model",
                model,
                "--optimizer",
                "sparse-adam",
                "--epochs",
                "1",
                "--out",
                str(tmp_path / model),
                "--quiet",
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "row-sparse gradients" in err[0], err
        assert not (tmp_path / model).exists()
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--optimizer",
            "sparse-adam",
            "--weight-decay",
            "1e-4",
            "--out",
            str(tmp_path / "wd"),
            "--quiet",
        ]
    )
    assert rc == 2 and "weight decay" in capsys.readouterr().err
