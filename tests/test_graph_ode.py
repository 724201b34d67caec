import numpy as np
import pytest
import scipy.linalg
import torch

from lightgode.core.graph import normalized_adjacency
from lightgode.core.ode import ODEConfig, euler_one_step, propagate
from lightgode.errors import ConfigError


def small_graph(seed=0, n_users=12, n_items=9, n_edges=40):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, n_users, n_edges)
    i = rng.integers(0, n_items, n_edges)
    return normalized_adjacency(n_users, n_items, u, i), u, i


def test_normalized_adjacency_is_symmetric_with_expected_scaling():
    A, u, i = small_graph()
    dense = A.toarray()
    assert np.allclose(dense, dense.T)
    # every edge (u, i) weighs 1/sqrt(deg u * deg i), duplicates counted once
    pairs = set(zip(u.tolist(), i.tolist()))
    deg_u = {x: sum(1 for p in pairs if p[0] == x) for x in set(u.tolist())}
    deg_i = {x: sum(1 for p in pairs if p[1] == x) for x in set(i.tolist())}
    for uu, ii in pairs:
        assert dense[uu, 12 + ii] == pytest.approx(1 / np.sqrt(deg_u[uu] * deg_i[ii]), rel=1e-6)
    assert A.nnz == 2 * len(pairs)
    # bipartite: no user-user or item-item entries
    assert not dense[:12, :12].any() and not dense[12:, 12:].any()
    # spectral radius of D^-1/2 A D^-1/2 is 1
    assert np.max(np.abs(np.linalg.eigvalsh(dense))) == pytest.approx(1.0, abs=1e-5)


def test_isolated_nodes_are_safe():
    A = normalized_adjacency(5, 4, np.array([0, 1]), np.array([0, 0]))
    assert np.isfinite(A.data).all()
    assert A[4].nnz == 0 and A[:, 5 + 3].nnz == 0


def test_one_euler_step_is_the_reference_identity():
    A, _, _ = small_graph(1)
    E0 = torch.randn(A.shape[0], 4, generator=torch.Generator().manual_seed(0))
    T = 1.8
    expected = (1 + T) * E0.numpy() + T * (A @ E0.numpy())
    out = propagate(A, E0, ODEConfig(t=T, solver="euler", steps=1))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def exact_dense(A, E0, T):
    n = A.shape[0]
    M = np.zeros((2 * n, 2 * n))
    M[:n, :n] = A.toarray()
    M[:n, n:] = np.eye(n)
    return (scipy.linalg.expm(T * M) @ np.vstack([E0, E0]))[:n]


@pytest.mark.parametrize(
    "solver,steps,tol", [("rk4", 64, 1e-5), ("dopri5", 1, 1e-5), ("exact", 1, 1e-5), ("euler", 4000, 1e-3)]
)
def test_solvers_agree_with_dense_expm(solver, steps, tol):
    A, _, _ = small_graph(2)
    E0 = torch.randn(A.shape[0], 3, generator=torch.Generator().manual_seed(1))
    ref = exact_dense(A, E0.numpy().astype(np.float64), 1.3)
    out = propagate(A, E0, ODEConfig(t=1.3, solver=solver, steps=steps)).numpy()
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < tol


def test_multi_step_euler_is_not_one_step():
    A, _, _ = small_graph(3)
    E0 = torch.randn(A.shape[0], 3)
    one = propagate(A, E0, ODEConfig(t=1.0))
    two = propagate(A, E0, ODEConfig(t=1.0, steps=2))
    # two half steps: E1 = E0 + h(AE0 + E0); E2 = E1 + h(AE1 + E0)
    h = 0.5
    A_t = torch.from_numpy(A.toarray())
    E1 = E0 + h * (A_t @ E0 + E0)
    E2 = E1 + h * (A_t @ E1 + E0)
    torch.testing.assert_close(two, E2, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(one, two)


def test_horizon_zero_returns_E0_and_bad_settings_raise():
    A, _, _ = small_graph(4)
    E0 = torch.randn(A.shape[0], 2)
    torch.testing.assert_close(propagate(A, E0, ODEConfig(t=0.0)), E0)
    for bad in ({"t": -1.0}, {"t": float("nan")}, {"solver": "magic"}, {"steps": 0}):
        with pytest.raises(ConfigError):
            ODEConfig(**bad)
    with pytest.raises(ConfigError):
        propagate(A, torch.randn(3, 2), ODEConfig())


def test_euler_one_step_helper_matches_solver():
    A, _, _ = small_graph(5)
    E0 = torch.randn(A.shape[0], 2)
    A_t = torch.from_numpy(A.toarray())
    torch.testing.assert_close(euler_one_step(A_t, E0, 0.8), propagate(A, E0, ODEConfig(t=0.8)))
