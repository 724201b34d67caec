import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lightgode.core.losses import alignment, bpr, directau, directau_with_grad, uniformity


def brute_uniformity(x: torch.Tensor, t: float = 2.0) -> float:
    n = x.shape[0]
    vals = [math.exp(-t * float((x[i] - x[j]).pow(2).sum())) for i, j in itertools.combinations(range(n), 2)]
    return math.log(sum(vals) / len(vals))


def test_alignment_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    u = F.normalize(torch.randn(7, 5, generator=g), dim=1)
    i = F.normalize(torch.randn(7, 5, generator=g), dim=1)
    brute = sum(float((u[b] - i[b]).pow(2).sum()) for b in range(7)) / 7
    assert float(alignment(u, i)) == pytest.approx(brute, rel=1e-6)


def test_uniformity_matches_brute_force_with_duplicate_rows():
    g = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(9, 4, generator=g), dim=1)
    x = torch.cat([x, x[:2]])  # a row twice counts twice, as in the reference
    assert float(uniformity(x)) == pytest.approx(brute_uniformity(x), rel=1e-5)
    assert float(uniformity(x, t=0.5)) == pytest.approx(brute_uniformity(x, 0.5), rel=1e-5)


def test_directau_combines_terms_on_normalised_rows():
    g = torch.Generator().manual_seed(2)
    u, i = torch.randn(6, 3, generator=g) * 3, torch.randn(6, 3, generator=g)
    un, inn = F.normalize(u, dim=1), F.normalize(i, dim=1)
    expected = float(alignment(un, inn)) + 0.7 * (brute_uniformity(un) + brute_uniformity(inn)) / 2
    assert float(directau(u, i, 0.7)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("gamma,b", [(0.0, 32), (0.5, 32), (10.0, 32), (0.5, 1), (0.5, 2)])
def test_hand_gradient_equals_autograd(gamma, b):
    g = torch.Generator().manual_seed(3)
    u = torch.randn(b, 8, generator=g) * 0.3
    i = torch.randn(b, 8, generator=g) * 2.0
    if b > 4:  # a user and an item repeated in the batch, as sampling with replacement gives
        u[4], i[7] = u[1], i[2]
    u, i = u.requires_grad_(), i.requires_grad_()
    loss = directau(u, i, gamma)
    gu, gi = torch.autograd.grad(loss, (u, i))
    loss2, hu, hi = directau_with_grad(u.detach(), i.detach(), gamma)
    assert float(loss2) == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(hu, gu, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(hi, gi, rtol=1e-4, atol=1e-6)


def test_bpr_hand_example():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(1.0))) / 2
    assert float(bpr(pos, neg)) == pytest.approx(expected, rel=1e-6)


def test_directau_model_steps_equal_autograd_with_rows_cleared_lazily():
    """DirectAUMF clears only last step's rows of .grad; Adam steps must still equal autograd's (dense zeroing)."""
    from lightgode.models.mf import DirectAUMF, MFEmbeddings

    models = [DirectAUMF(9, 7, 4, 2.0, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    opts = [torch.optim.Adam(m.parameters(), lr=0.05) for m in models]
    g = torch.Generator().manual_seed(6)
    for step in range(6):
        users, items = torch.randint(0, 9, (5,), generator=g), torch.randint(0, 7, (5,), generator=g)
        if step == 3:  # a replaced .grad (as after a resume) is cleared whole
            models[0].user.grad = torch.ones_like(models[0].user)
        losses = [models[0].compute_grads(users, items), MFEmbeddings.compute_grads(models[1], users, items)]
        assert float(losses[0]) == pytest.approx(float(losses[1]), rel=1e-5)
        torch.testing.assert_close(models[0].user.grad, models[1].user.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(models[0].item.grad, models[1].item.grad, rtol=1e-4, atol=1e-6)
        for opt in opts:
            opt.step()
    torch.testing.assert_close(models[0].user, models[1].user, rtol=1e-4, atol=1e-6)
