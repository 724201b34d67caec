"""Horizon search, exact solver, embedding discrepancy, `tune` and `propagate` commands."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch

from lightgode.cli import main
from lightgode.core.discrepancy import cosine_distance, discrepancy
from lightgode.core.graph import normalized_adjacency
from lightgode.core.ode import ODEConfig, propagate
from lightgode.core.tune import TuneConfig, maximize, tune_split
from lightgode.data.interactions import Interactions
from lightgode.data.split import Split, save_split
from lightgode.errors import ConfigError
from lightgode.runs.store import check_complete, load_run


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# search


@pytest.mark.parametrize("peak", [0.0, 0.37, 1.37, 2.9, 4.0])
def test_maximize_finds_the_peak_of_a_known_curve(peak):
    calls = []

    def f(x):
        calls.append(x)
        return -(abs(x - peak) ** 1.5) + 0.07  # unimodal, not smooth at the peak

    best, seen = maximize(f, 0.0, 4.0, grid=9, refine=6)
    assert abs(best - peak) <= 0.5 / 2**3 + 1e-12  # grid step 0.5, halved at least every second refinement
    assert seen[best] == max(seen.values())
    assert len(calls) == len(set(calls)) <= 15


def test_maximize_follows_a_curve_still_rising_at_the_end_of_the_range():
    f = lambda x: -((x - 5.0) ** 2)  # noqa: E731  (peak beyond hi = 4)
    best, seen = maximize(f, 0.0, 4.0, grid=5, refine=2, extend=3)
    assert best == 5.0 and max(seen) == 6.0  # 5 found, 6 seen to be lower, then no further step
    best, seen = maximize(f, 0.0, 4.0, grid=5, refine=2, extend=0)
    assert best == 4.0 and max(seen) == 4.0
    best, seen = maximize(lambda x: -((x - 1.0) ** 2), 0.0, 4.0, grid=5, refine=0, extend=3)
    assert max(seen) == 4.0  # no extension when the best point is inside the range


def test_maximize_prefers_the_smaller_of_tied_points():
    best, _ = maximize(lambda x: 1.0 if 1.0 <= x <= 3.0 else 0.0, 0.0, 4.0, grid=5, refine=0)
    assert best == 1.0


def test_tune_config_rejects_bad_ranges():
    for bad in (
        dict(t_min=2.0, t_max=1.0),
        dict(grid=1),
        dict(refine=-1),
        dict(extend=-1),
        dict(extend=1.5),
        dict(metric="ndcg"),
        dict(metric="foo@20"),
        dict(max_users=0),
        dict(max_scores=0),
    ):
        with pytest.raises(ConfigError):
            TuneConfig(**bad)
    assert TuneConfig().user_cap(40981) == 600_000_000 // 40981
    assert TuneConfig(max_users=100).user_cap(50) == 100
    assert TuneConfig(max_scores=None).user_cap(10**6) is None


# exact solution


def small_graph(seed=0, n_users=7, n_items=6):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < 0.45
    mask[np.arange(n_users), np.arange(n_users) % n_items] = True
    u, i = np.nonzero(mask)
    A = normalized_adjacency(n_users, n_items, u, i)
    E0 = torch.from_numpy(rng.normal(size=(n_users + n_items, 4)).astype(np.float32))
    return A, E0


@pytest.mark.parametrize("T", [0.3, 1.8, 4.0])
def test_exact_matches_dense_expm_and_adaptive_solvers(T):
    A, E0 = small_graph()
    n = A.shape[0]
    Ad = A.toarray().astype(np.float64)
    aug = np.block([[T * Ad, T * np.eye(n)], [np.zeros((n, n)), np.zeros((n, n))]])
    x0 = np.vstack([E0.numpy().astype(np.float64)] * 2)
    want = (scipy.linalg.expm(aug) @ x0)[:n]
    # independent closed form: E(T) = exp(TA) E0 + A^-1 (exp(TA) - I) E0 through the eigenbasis of symmetric A
    w, V = np.linalg.eigh(Ad)
    phi = np.where(np.abs(w) > 1e-12, np.expm1(T * w) / np.where(np.abs(w) > 1e-12, w, 1.0), T)
    closed = V @ np.diag(np.exp(T * w) + phi) @ V.T @ E0.numpy().astype(np.float64)
    np.testing.assert_allclose(want, closed, rtol=1e-9, atol=1e-9)
    exact = propagate(A, E0, ODEConfig(t=T, solver="exact")).double().numpy()
    assert np.linalg.norm(exact - want) / np.linalg.norm(want) < 1e-6
    for ode in (
        ODEConfig(t=T, solver="dopri5"),
        ODEConfig(t=T, solver="dopri5", rtol=1e-4, atol=1e-6),
        ODEConfig(t=T, solver="rk4", steps=32),
    ):
        got = propagate(A, E0, ode).double().numpy()
        assert np.linalg.norm(got - want) / np.linalg.norm(want) < 1e-4, ode
    one = propagate(A, E0, ODEConfig(t=T)).double().numpy()  # a single Euler step is not the exact solution
    assert np.linalg.norm(one - want) / np.linalg.norm(want) > 1e-3


# discrepancy


def test_discrepancy_known_values():
    E0 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    E = torch.tensor([[0.0, 3.0], [0.0, 5.0], [-1.0, -1.0], [1.0, 0.0]])
    # rows: orthogonal (1), same direction (0), opposite (2); the zero row is left out
    assert cosine_distance(E0, E) == pytest.approx(1.0)
    d = discrepancy(E0, E, n_users=2)
    assert d["cosine_distance_users"] == pytest.approx(0.5)
    assert d["cosine_distance_items"] == pytest.approx(2.0)


def test_discrepancy_is_zero_at_t0_scale_free_and_grows_with_t():
    A, E0 = small_graph(1, 30, 25)
    same = discrepancy(E0, 3.0 * E0, 30)
    assert same["cosine_distance"] == pytest.approx(0.0, abs=1e-6)  # float32 rows
    assert same["uniformity_delta"] == pytest.approx(0.0, abs=1e-5)
    dists = [
        discrepancy(E0, propagate(A, E0, ODEConfig(t=T, solver="exact")), 30)["cosine_distance"]
        for T in (0.5, 1.0, 2.0, 4.0)
    ]
    assert all(a < b for a, b in zip(dists, dists[1:]))
    assert dists[0] > 1e-3


# fixtures: a tiny split and a tiny trained run


def block_interactions(seed=0, n_users=80, n_items=50, per_user=9):
    """Two communities: users mostly interact with the items of their own half."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 2
        own = np.arange(group * n_items // 2, (group + 1) * n_items // 2)
        items = rng.choice(own, size=per_user - 1, replace=False).tolist() + [int(rng.integers(n_items))]
        rows += [(f"u{u}", f"i{i}") for i in dict.fromkeys(items)]
    return rows


def tiny_split(seed=0, test_rows=None) -> Split:
    rows = block_interactions(seed)
    users = np.array(sorted({u for u, _ in rows}, key=lambda s: int(s[1:])))
    items = np.array(sorted({i for _, i in rows}, key=lambda s: int(s[1:])))
    uidx = {u: k for k, u in enumerate(users)}
    iidx = {i: k for k, i in enumerate(items)}
    rng = np.random.default_rng(seed + 1)
    part = rng.choice(3, size=len(rows), p=[0.7, 0.15, 0.15])
    parts = []
    for p in range(3):
        sel = [r for r, q in zip(rows, part) if q == p]
        if p == 2 and test_rows is not None:
            sel = test_rows
        parts.append(
            Interactions(
                users,
                items,
                np.array([uidx[u] for u, _ in sel], np.int32),
                np.array([iidx[i] for _, i in sel], np.int32),
            )
        )
    return Split(*parts)


def test_tuning_never_reads_test():
    split_a = tiny_split()
    split_b = tiny_split(test_rows=[("u0", "i1"), ("u1", "i30")])
    E0 = torch.randn(split_a.train.n_users + split_a.train.n_items, 8, generator=torch.Generator().manual_seed(0))
    cfg = TuneConfig(grid=5, refine=2)
    a, b = tune_split(E0, split_a, config=cfg), tune_split(E0, split_b, config=cfg)
    assert a.t == b.t and a.value == b.value
    assert [p["t"] for p in a.points] == sorted(p["t"] for p in a.points) and len(a.points) == 7


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "blocks.csv"
    pd.DataFrame(block_interactions(), columns=["user", "item"]).to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_file):
    out = tmp_path_factory.mktemp("runs") / "r"
    assert (
        main(
            [
                "train",
                "--data",
                str(data_file),
                "--kcore",
                "0",
                "--epochs",
                "8",
                "--patience",
                "8",
                "--lr",
                "0.01",
                "--dim",
                "16",
                "--t",
                "0.5",
                "--threads",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


def test_tune_writes_a_complete_run(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    before = load_run(run)
    assert main(["tune", str(run), "--grid", "5", "--refine", "2", "--extend", "0", "--max-users", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    check_complete(run)
    r = load_run(run)
    tune = json.loads((run / "tune.json").read_text())
    assert r.config["ode"]["t"] == tune["t"] == out["tune"]["t"]
    assert len(tune["points"]) == 7 and {"metrics", "discrepancy", "t"} <= set(tune["points"][0])
    assert (run / "t_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the chosen T is the best validation point, and the stored metrics are those at the chosen T
    best = max(p["metrics"]["ndcg@20"] for p in tune["points"])
    assert tune["value"] == best == pytest.approx(r.metrics["valid"]["ndcg@20"], rel=1e-6)
    torch.testing.assert_close(r.user_embedding, before.user_embedding)
    assert main(["evaluate", str(run), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test"]["ndcg@20"] == pytest.approx(r.metrics["test"]["ndcg@20"], rel=1e-6)
    assert again["discrepancy"]["cosine_distance"] >= 0.0


def test_tune_bad_input_leaves_the_run_untouched(tiny_run, tmp_path, capsys):
    assert main(["tune", str(tmp_path / "missing")]) == 2
    before = (tiny_run / "config.json").read_bytes()
    assert main(["tune", str(tiny_run), "--t-min", "3", "--t-max", "1"]) == 2
    assert "t_min" in capsys.readouterr().err
    assert (tiny_run / "config.json").read_bytes() == before and not (tiny_run / "tune.json").exists()


def test_train_t_auto(data_file, tmp_path):
    out = tmp_path / "auto"
    assert (
        main(
            [
                "train",
                "--data",
                str(data_file),
                "--kcore",
                "0",
                "--epochs",
                "3",
                "--lr",
                "0.01",
                "--dim",
                "8",
                "--t",
                "auto",
                "--threads",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    r = load_run(out)
    tune = json.loads((out / "tune.json").read_text())
    assert r.config["t_auto"] is True and r.config["ode"]["t"] == tune["t"]
    assert json.loads((out / "train.json").read_text())["tune"]["t"] == tune["t"]
    assert (out / "t_curve.png").is_file()


# propagate


def write_emb(d, split, rng, dim=6, extra_user=False):
    nu, ni = split.train.n_users, split.train.n_items
    U = rng.normal(size=(nu, dim)).astype(np.float32)
    I = rng.normal(size=(ni, dim)).astype(np.float32)
    pu, pi = rng.permutation(nu), rng.permutation(ni)
    u_ids = list(split.user_ids[pu])
    Uf = U[pu]
    if extra_user:
        u_ids.append("stranger")
        Uf = np.vstack([Uf, np.ones((1, dim), np.float32)])
    np.save(d / "U.npy", Uf)
    np.save(d / "I.npy", I[pi])
    (d / "u.txt").write_text("".join(f"{x}\n" for x in u_ids))
    (d / "i.txt").write_text("".join(f"{x}\n" for x in split.item_ids[pi]))
    return U, I


def read_out(folder, side):
    ids = (folder / f"{side}_ids.txt").read_text().splitlines()
    return ids, np.load(folder / f"{side}_embedding.npy", allow_pickle=False)


def test_propagate_round_trip_keeps_ids(tmp_path, capsys):
    split = tiny_split()
    save_split(split, tmp_path / "split")
    U, I = write_emb(tmp_path, split, np.random.default_rng(0), extra_user=True)
    args = [
        "propagate",
        "--split-dir",
        str(tmp_path / "split"),
        "--user-emb",
        str(tmp_path / "U.npy"),
        "--item-emb",
        str(tmp_path / "I.npy"),
        "--user-ids",
        str(tmp_path / "u.txt"),
        "--item-ids",
        str(tmp_path / "i.txt"),
    ]
    # T = 0: every id gets its own vector back, in the input row order
    assert main(args + ["--t", "0", "--out", str(tmp_path / "p0"), "--quiet"]) == 0
    ids, X = read_out(tmp_path / "p0", "user")
    assert ids == (tmp_path / "u.txt").read_text().splitlines()
    np.testing.assert_array_equal(X, np.load(tmp_path / "U.npy"))
    # T = 1: graph nodes follow the ODE (one Euler step), the isolated extra id gets (1 + T) E0
    capsys.readouterr()
    assert main(args + ["--t", "1", "--out", str(tmp_path / "p1"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    tr = split.train
    A = normalized_adjacency(tr.n_users, tr.n_items, tr.users, tr.items)
    E = propagate(A, torch.from_numpy(np.vstack([U, I])), ODEConfig(t=1.0)).numpy()
    ids, X = read_out(tmp_path / "p1", "user")
    pos = {u: k for k, u in enumerate(split.user_ids)}
    for row, uid in enumerate(ids):
        want = 2.0 * np.ones(6) if uid == "stranger" else E[pos[uid]]
        np.testing.assert_allclose(X[row], want, rtol=1e-5, atol=1e-6)
    iids, XI = read_out(tmp_path / "p1", "item")
    ipos = {i: k for k, i in enumerate(split.item_ids)}
    np.testing.assert_allclose(XI, E[tr.n_users + np.array([ipos[i] for i in iids])], rtol=1e-5, atol=1e-6)
    assert report["isolated"] == {"users": 1, "items": 0}
    assert set(report["metrics"]) == {"before", "after"} and "ndcg@20" in report["metrics"]["after"]["test"]
    # the Parquet output is a valid input: propagating it with T = 0 returns it unchanged
    assert (
        main(
            [
                "propagate",
                "--split-dir",
                str(tmp_path / "split"),
                "--user-emb",
                str(tmp_path / "p1" / "users.parquet"),
                "--item-emb",
                str(tmp_path / "p1" / "items.parquet"),
                "--t",
                "0",
                "--out",
                str(tmp_path / "p2"),
                "--quiet",
            ]
        )
        == 0
    )
    ids2, X2 = read_out(tmp_path / "p2", "user")
    assert ids2 == ids
    np.testing.assert_array_equal(X2, X)
    listed = json.loads((tmp_path / "p2" / "COMPLETE").read_text())["files"]
    assert {"users.parquet", "items.parquet", "user_embedding.npy", "propagate.json"} <= set(listed)
    # Parquet as `lightgode export` writes it (vector column named "embedding") is read the same way
    import pandas as pd

    for side in ("users", "items"):
        pd.read_parquet(tmp_path / "p1" / f"{side}.parquet").rename(columns={"vector": "embedding"}).to_parquet(
            tmp_path / f"{side}_export.parquet"
        )
    assert (
        main(
            [
                "propagate",
                "--split-dir",
                str(tmp_path / "split"),
                "--user-emb",
                str(tmp_path / "users_export.parquet"),
                "--item-emb",
                str(tmp_path / "items_export.parquet"),
                "--t",
                "0",
                "--out",
                str(tmp_path / "p3"),
                "--quiet",
            ]
        )
        == 0
    )
    ids3, X3 = read_out(tmp_path / "p3", "user")
    assert ids3 == ids
    np.testing.assert_array_equal(X3, X)


def test_propagate_auto_and_bad_input(tmp_path, capsys):
    split = tiny_split()
    save_split(split, tmp_path / "split")
    write_emb(tmp_path, split, np.random.default_rng(1))
    base = [
        "propagate",
        "--user-emb",
        str(tmp_path / "U.npy"),
        "--item-emb",
        str(tmp_path / "I.npy"),
        "--user-ids",
        str(tmp_path / "u.txt"),
        "--item-ids",
        str(tmp_path / "i.txt"),
    ]
    assert (
        main(
            base
            + [
                "--split-dir",
                str(tmp_path / "split"),
                "--t",
                "auto",
                "--solver",
                "exact",
                "--out",
                str(tmp_path / "auto"),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["ode"]["solver"] == "exact" and report["ode"]["t"] == report["tune"]["t"]
    assert (tmp_path / "auto" / "t_curve.png").is_file() and (tmp_path / "auto" / "tune.json").is_file()
    # --t auto needs validation data; a graph node without an embedding; no half-written output
    csv = tmp_path / "all.csv"
    pd.DataFrame(block_interactions(), columns=["user", "item"]).to_csv(csv, index=False)
    assert main(base + ["--data", str(csv), "--t", "auto", "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "u_short.txt").write_text("".join(f"{x}\n" for x in (tmp_path / "u.txt").read_text().split()[:-1]))
    np.save(tmp_path / "U_short.npy", np.load(tmp_path / "U.npy")[:-1])
    bad = [
        "propagate",
        "--split-dir",
        str(tmp_path / "split"),
        "--user-emb",
        str(tmp_path / "U_short.npy"),
        "--item-emb",
        str(tmp_path / "I.npy"),
        "--user-ids",
        str(tmp_path / "u_short.txt"),
        "--item-ids",
        str(tmp_path / "i.txt"),
        "--out",
        str(tmp_path / "x"),
    ]
    capsys.readouterr()
    assert main(bad) == 2
    assert "no embedding" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    assert main(base + ["--data", str(csv), "--t", "0.5", "--out", str(tmp_path / "d")]) == 0
