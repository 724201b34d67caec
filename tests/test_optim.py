"""RowAdam: dense Adam's weights from row-sparse work (closed-form catch-up of the zero-gradient steps)."""

import math

import numpy as np
import pytest
import torch

from lightgode.core.config import TrainConfig
from lightgode.core.optim import RowAdam, _tails
from lightgode.core.train import fit, make_optimizer
from lightgode.models.mf import DirectAUMF

from conftest import fit_whole_and_resumed


def _sparse(rows: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, shape, check_invariants=False)


def test_tail_tables_equal_the_sums_they_stand_for():
    b1, b2 = 0.9, 0.999
    T = _tails(b1, b2)
    k = np.arange(1, 3000, dtype=np.float64)
    for s in (0, 1, 7, 250, 5000, T.J - 3, T.J):
        j = s + k
        c = np.sqrt(1 - b2**j) / (1 - b1**j)
        d = (1 - b2**j) / (1 - b1**j)
        assert T.F[s] == pytest.approx(float((T.r**k * c).sum()), rel=1e-12)
        assert T.G[s] == pytest.approx(float((T.q**k * d).sum()), rel=1e-12)
    assert T.r**T.K < 2.0**-55


@pytest.mark.parametrize("scale", [1.0, 1e-5, 1e-8, 1e-11])  # sqrt(v) far above, near and far below eps
def test_row_adam_gives_torch_adams_weights_and_moments(scale):
    gen = torch.Generator().manual_seed(0)
    n, d = 40, 3
    start = torch.randn(n, d, generator=gen)
    dense, rowwise = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_d, opt_r = torch.optim.Adam([dense], lr=0.01), RowAdam([rowwise], lr=0.01)
    for _ in range(700):
        rows = torch.randint(0, n, (4,), generator=gen)  # repeats allowed: their gradients add up
        opt_r.catch_up(rowwise, rows)
        assert torch.allclose(rowwise.detach()[rows], dense.detach()[rows], rtol=0, atol=1e-5)  # what is read
        g = scale * (torch.randn(len(rows), d, generator=gen) + 0.5)
        dense.grad = torch.zeros(n, d).index_add_(0, rows, g)
        opt_d.step()
        rowwise.grad = _sparse(rows, g, (n, d))
        opt_r.step()
    untouched_before_flush = rowwise.detach().clone()
    opt_r.flush()
    moved_d, moved_r = dense.detach() - start, rowwise.detach() - start
    assert float(moved_d.abs().max()) > 1e-4  # the weights did move, even on gradients far below eps
    assert torch.allclose(moved_r, moved_d, rtol=1e-3, atol=1e-5)  # dense Adam rounds O(1) weights every step
    assert not torch.equal(untouched_before_flush, rowwise.detach())  # flush moved rows left behind
    sd_r, sd_d = opt_r.state_dict()["state"][0], opt_d.state_dict()["state"][0]
    assert set(sd_r) == set(sd_d) and float(sd_r["step"]) == float(sd_d["step"]) == 700
    assert torch.allclose(sd_r["exp_avg"], sd_d["exp_avg"], rtol=1e-4, atol=1e-6 * scale)
    assert torch.allclose(sd_r["exp_avg_sq"], sd_d["exp_avg_sq"], rtol=1e-4, atol=1e-12 * scale**2)


def test_a_gradient_read_from_stale_rows_is_caught_up_inside_step():
    """Without catch_up before the read, step still applies the missed steps before the new gradient."""
    start = torch.ones(3, 2)
    dense, rowwise = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_d, opt_r = torch.optim.Adam([dense], lr=0.1), RowAdam([rowwise], lr=0.1)
    for rows in ([0, 1], [1], [1], [0, 2]):
        r = torch.tensor(rows)
        g = torch.ones(len(rows), 2)
        dense.grad = torch.zeros(3, 2).index_add_(0, r, g)
        opt_d.step()
        rowwise.grad = _sparse(r, g, (3, 2))
        opt_r.step()
    assert torch.allclose(rowwise.detach()[[0, 2]], dense.detach()[[0, 2]], atol=1e-6)
    assert not torch.allclose(rowwise.detach()[1], dense.detach()[1])  # row 1 waits for flush
    opt_r.flush()
    assert torch.allclose(rowwise.detach(), dense.detach(), atol=1e-6)


def test_adam_states_carry_over_both_ways():
    gen = torch.Generator().manual_seed(3)
    n, d = 20, 4
    start = torch.randn(n, d, generator=gen)
    batches = [(torch.randint(0, n, (5,), generator=gen), torch.randn(5, d, generator=gen)) for _ in range(60)]

    def run(kinds):
        p = torch.nn.Parameter(start.clone())
        state = None
        for part, kind in enumerate(kinds):
            opt = RowAdam([p], lr=0.02) if kind == "row" else torch.optim.Adam([p], lr=0.02)
            if state is not None:
                opt.load_state_dict(state)
            for rows, g in batches[30 * part : 30 * (part + 1)]:
                if kind == "row":
                    p.grad = _sparse(rows, g, (n, d))
                else:
                    p.grad = torch.zeros(n, d).index_add_(0, rows, g)
                opt.step()
            if kind == "row":
                opt.flush()
            state = opt.state_dict()
        return p.detach()

    reference = run(["dense", "dense"])
    assert torch.allclose(run(["row", "dense"]), reference, atol=1e-5)
    assert torch.allclose(run(["dense", "row"]), reference, atol=1e-5)


def test_training_picks_row_adam_only_where_it_gives_adams_weights():
    def model():
        return DirectAUMF(30, 20, 8, 1.0, generator=torch.Generator().manual_seed(0))

    m = model()
    assert isinstance(make_optimizer(m, list(m.parameters()), TrainConfig()), RowAdam)
    for cfg in (TrainConfig(weight_decay=1e-6), TrainConfig(optimizer="dense-adam")):
        m = model()
        opt = make_optimizer(m, list(m.parameters()), cfg)
        assert type(opt) is torch.optim.Adam and not m.sparse_grads


def test_directau_training_with_row_adam_matches_dense_adam():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 60, 600), rng.integers(0, 40, 600)
    weights = {}
    for name in ("adam", "dense-adam"):
        m = DirectAUMF(60, 40, 8, 1.0, generator=torch.Generator().manual_seed(0))
        fit(m, users, items, TrainConfig(epochs=3, batch_size=32, lr=0.01, optimizer=name), seed=1)
        weights[name] = torch.cat([m.user.detach(), m.item.detach()])
    start = torch.cat(
        [p.detach() for p in DirectAUMF(60, 40, 8, 1.0, generator=torch.Generator().manual_seed(0)).parameters()]
    )
    assert float((weights["dense-adam"] - start).abs().max()) > 0.05
    assert torch.allclose(weights["adam"], weights["dense-adam"], rtol=0, atol=1e-5)


def test_row_adam_training_resumes_exactly_from_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 200), rng.integers(0, 20, 200)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.01)

    def model(seed: int = 0):
        return DirectAUMF(30, 20, 8, 1.0, generator=torch.Generator().manual_seed(seed))

    whole, resumed, result = fit_whole_and_resumed(
        model, users, items, cfg, 1, tmp_path, make_resumed=lambda: model(seed=99)
    )
    assert result.epochs_run == 4
    assert torch.equal(resumed.user, whole.user) and torch.equal(resumed.item, whole.item)


def test_row_adam_refuses_what_it_does_not_implement():
    p = torch.nn.Parameter(torch.ones(3, 2))
    with pytest.raises(ValueError, match="impossible"):
        RowAdam([p], lr=-1.0)
    opt = RowAdam([p], lr=0.1)
    p.grad = torch.ones(3, 2)
    with pytest.raises(RuntimeError, match="sparse COO"):
        opt.step()
    dense = torch.optim.Adam([p], lr=0.1, weight_decay=0.01)
    dense.step()
    with pytest.raises(ValueError, match="weight decay"):
        RowAdam([p], lr=0.1).load_state_dict(dense.state_dict())
    assert math.isfinite(float(p.detach().sum()))


def test_a_trained_model_does_not_keep_its_optimiser_alive():
    import gc
    import weakref

    m = DirectAUMF(30, 20, 8, 1.0, generator=torch.Generator().manual_seed(0))
    opt = make_optimizer(m, list(m.parameters()), TrainConfig())
    m.compute_grads(torch.tensor([0, 1]), torch.tensor([2, 3]))
    opt.step()
    ref = weakref.ref(opt)
    del opt
    gc.collect()
    assert ref() is None
    m.compute_grads(torch.tensor([0, 1]), torch.tensor([2, 3]))  # still works: nothing to catch up with
