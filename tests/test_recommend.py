"""Recommender API, fold-in maths, incremental updates, the faiss index, export and update commands.

Runs are tiny and synthetic (no training): item E0 random, each user's E0 the mean direction of its items
plus noise, so that a user's own history predicts its embedding, as after DirectAU training.
"""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lightgode.cli import main
from lightgode.core.config import RunConfig
from lightgode.core.ode import ODEConfig, propagate
from lightgode.data.interactions import from_pairs
from lightgode.data.split import split_random
from lightgode.errors import ConfigError, UnknownIdError
from lightgode.runs.store import check_complete, load_run
from lightgode.serving.foldin import (
    FoldInConfig,
    PropagatedGraph,
    add_edges,
    adjacency,
    fold_in,
    initial_values,
    trajectory_integral,
)
from lightgode.serving.index import IndexConfig, ItemIndex, recall_at_k
from lightgode.serving.recommender import Recommender, write_embedding_run

N_USERS, N_ITEMS, DIM = 80, 50, 8


def planted_run(path, seed=0, t=1.5):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, N_USERS)
    pairs = []
    for u in range(N_USERS):
        items = rng.choice(np.arange(groups[u] * 12, groups[u] * 12 + 14) % N_ITEMS, size=8, replace=False)
        pairs += [(f"u{u}", f"i{i}") for i in items]
    inter = from_pairs([p[0] for p in pairs], [p[1] for p in pairs])
    split = split_random(inter, (0.8, 0.1, 0.1), seed=seed)
    item_E0 = torch.from_numpy(rng.normal(size=(split.train.n_items, DIM)).astype(np.float32))
    R = split.train.to_csr()
    mean = torch.from_numpy(np.asarray(R @ item_E0.numpy()) / np.maximum(R.sum(1), 1))
    user_E0 = torch.nn.functional.normalize(mean.float(), dim=1) * 2 + 0.2 * torch.randn(split.train.n_users, DIM)
    cfg = RunConfig().override({"ode": {"t": t}}).to_dict()
    return write_embedding_run(path, split, user_E0.float(), item_E0, cfg)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return planted_run(tmp_path_factory.mktemp("runs") / "planted")


@pytest.fixture(scope="module")
def rec(run_dir):
    return Recommender.load(run_dir)


# ---- fold-in maths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ode",
    [
        ODEConfig(t=1.8),
        ODEConfig(t=1.2, solver="euler", steps=3),
        ODEConfig(t=1.0, solver="rk4", steps=4),
        ODEConfig(t=0.7, solver="exact"),
    ],
)
def test_foldin_with_the_trained_initial_value_reproduces_propagation(run_dir, ode):
    run = load_run(run_dir)
    R = run.split.train.to_csr()
    E0 = torch.cat([run.user_embedding, run.item_embedding])
    A = adjacency(R)
    E = propagate(A, E0, ode)
    F_items = trajectory_integral(A, E0, ode)[R.shape[0] :]
    deg_i = np.bincount(R.indices, minlength=R.shape[1])
    got = fold_in(R, F_items, deg_i, run.user_embedding, ode.t)
    torch.testing.assert_close(got, E[: R.shape[0]], atol=2e-4, rtol=1e-4)


def test_one_step_formula_with_zero_initial_value(rec):
    items = ["i3", "i5", "i7"]
    r = Recommender(
        rec.user_embeddings, rec.item_embeddings, rec.vocab, rec.seen, graph=rec.graph, foldin=FoldInConfig(init="zero")
    )
    got = r.embed_history(items)
    g, T = rec.graph, rec.graph.ode.t
    idx = rec.vocab.item_index(items)
    deg_i = np.bincount(g.R.indices, minlength=g.n_items)[idx] + 1  # the item's degree with the new user
    want = T * sum(g.E0[g.n_users + i] / np.sqrt(len(items) * d) for i, d in zip(idx, deg_i))
    torch.testing.assert_close(got, want.float(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("init", ["zero", "mean", "norm_mean"])
def test_foldin_of_an_existing_users_history_lands_close_to_its_embedding(rec, init):
    r = Recommender(
        rec.user_embeddings, rec.item_embeddings, rec.vocab, rec.seen, graph=rec.graph, foldin=FoldInConfig(init=init)
    )
    R = rec.graph.R
    cos, overlap = [], []
    for u in range(rec.n_users):
        hist = rec.vocab.item_ids[R.indices[R.indptr[u] : R.indptr[u + 1]]]
        if len(hist) == 0:
            continue
        e = r.embed_history(hist)
        cos.append(float(torch.nn.functional.cosine_similarity(e, rec.user_embeddings[u], dim=0)))
        a = {x.item for x in r.recommend_for_history(hist, 10)}
        b = {x.item for x in rec.recommend(rec.vocab.user_ids[u], 10, exclude_seen=False) if x.item not in hist}
        overlap.append(len(a & b) / 10)
    assert np.median(cos) > 0.9
    assert np.mean(overlap) > 0.6


def test_initial_values_of_nodes_without_neighbours_are_zero():
    nb = sp.csr_matrix((2, 3), dtype=np.float32)
    for init in ("zero", "mean", "norm_mean"):
        assert torch.count_nonzero(initial_values(nb, torch.ones(3, 4), init, 2.0)) == 0
    with pytest.raises(ConfigError, match="unknown fold-in"):
        initial_values(nb, torch.ones(3, 4), "median", 1.0)


# ---- incremental updates -------------------------------------------------------------------------------------


def random_graph(seed, n_users=40, n_items=30, ode=ODEConfig(t=1.3)):
    rng = np.random.default_rng(seed)
    R = sp.random(n_users, n_items, density=0.15, random_state=seed, format="csr")
    return PropagatedGraph.build(R, torch.from_numpy(rng.normal(size=(n_users + n_items, 6)).astype(np.float32)), ode)


@pytest.mark.parametrize("seed", range(4))
def test_local_update_equals_full_repropagation(seed):
    g = random_graph(seed)
    rng = np.random.default_rng(seed)
    u = rng.integers(0, g.n_users + 3, 6)
    i = rng.integers(0, g.n_items + 2, 6)
    U, I = max(g.n_users, u.max() + 1), max(g.n_items, i.max() + 1)
    local, s1 = add_edges(g, u, i, U, I, local_fraction=1.0)
    full, s2 = add_edges(g, u, i, U, I, local_fraction=0.0)
    assert s1.mode == "local" and s2.mode == "full" and s1.recomputed_rows < U + I
    torch.testing.assert_close(local.E, full.E, atol=1e-5, rtol=1e-5)
    # and a full re-propagation of the grown graph from scratch agrees
    torch.testing.assert_close(full.E, propagate(adjacency(full.R), full.E0, g.ode), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full.E0[: g.n_users], g.E0[: g.n_users])


def test_multistep_solver_updates_fully():
    g = random_graph(1, ode=ODEConfig(t=1.0, solver="rk4", steps=4))
    g2, stats = add_edges(g, np.array([0]), np.array([g.n_items]), g.n_users, g.n_items + 1)
    assert stats.mode == "full" and stats.new_items == 1 and stats.new_edges == 1
    torch.testing.assert_close(g2.E, propagate(adjacency(g2.R), g2.E0, g2.ode))


def test_duplicate_edges_change_nothing():
    g = random_graph(2)
    u, i = g.R.nonzero()
    g2, stats = add_edges(g, u[:5], i[:5], g.n_users, g.n_items)
    assert stats.new_edges == 0 and stats.recomputed_rows == 0
    torch.testing.assert_close(g2.E, g.E)


def test_add_interactions_then_save_and_reload(run_dir, tmp_path):
    r = Recommender.load(run_dir)
    known_u, known_i = str(r.vocab.user_ids[0]), str(r.vocab.item_ids[0])
    stats = r.add_interactions([("new-user", known_i), ("new-user", "new-item"), (known_u, "new-item")])
    assert (stats.new_users, stats.new_items, stats.new_edges) == (1, 1, 3)
    assert [x.item for x in r.recommend("new-user", 5)] and known_i not in {x.item for x in r.recommend("new-user", 50)}
    assert r.similar_items("new-item", 3)
    out = r.save_run(tmp_path / "updated")
    check_complete(out)
    assert json.loads((out / "update.json").read_text())["updates"][0]["new_edges"] == 3
    r2 = Recommender.load(out)
    torch.testing.assert_close(r2.user_embeddings, r.user_embeddings, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(r2.item_embeddings, r.item_embeddings, atol=1e-5, rtol=1e-5)
    assert Recommender.load(run_dir).n_users == r.n_users - 1  # the source run is untouched
    with pytest.raises(ConfigError):
        r.add_interactions([])


# ---- queries -------------------------------------------------------------------------------------------------


def test_single_user_path_equals_batch_path(rec):
    users = rec.vocab.user_ids[:20]
    batch = dict(rec.recommend_many(users, 7))
    for u in users:
        single = rec.recommend(u, 7)
        assert [x.item for x in single] == [x.item for x in batch[str(u)]]
        np.testing.assert_allclose([x.score for x in single], [x.score for x in batch[str(u)]], rtol=1e-5)


def test_seen_items_are_excluded_and_k_is_checked(rec):
    u = 3
    seen = set(rec.vocab.item_ids[rec.seen[u].indices])
    recs = rec.recommend(rec.vocab.user_ids[u], rec.n_items)
    assert not seen & {x.item for x in recs} and len(recs) == rec.n_items - len(seen)
    assert [x.rank for x in recs] == list(range(1, len(recs) + 1))
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:]))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            rec.recommend(rec.vocab.user_ids[u], bad)


def test_history_and_similar_items(rec):
    hist = ["i1", "i2", "i2"]
    recs = rec.recommend_for_history(hist, 10)
    assert len(recs) == 10 and not {"i1", "i2"} & {x.item for x in recs}
    assert "i1" in {x.item for x in rec.recommend_for_history(hist, rec.n_items, exclude_seen=False)}
    with pytest.raises(UnknownIdError, match="nope"):
        rec.recommend_for_history(["i1", "nope"], 5)
    with pytest.raises(ConfigError):
        rec.recommend_for_history([], 5)
    with pytest.raises(UnknownIdError):
        rec.recommend("nobody")
    sim = rec.similar_items("i4", 5)
    unit = torch.nn.functional.normalize(rec.item_embeddings, dim=1)
    i = int(rec.vocab.item_index(["i4"])[0])
    cos = (unit @ unit[i]).numpy()
    cos[i] = -np.inf
    assert [x.item for x in sim] == list(rec.vocab.item_ids[np.argsort(-cos, kind="stable")[:5]])
    with pytest.raises(UnknownIdError):
        rec.similar_items("nope")


# ---- index ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_index_recall_and_exclusion(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 16)).astype(np.float32)
    Q = rng.normal(size=(50, 16)).astype(np.float32)
    exact = np.argsort(-(Q @ X.T), axis=1)[:, :20]
    idx = ItemIndex(X, IndexConfig(kind=kind, nprobe=32))
    got, scores = idx.search(Q, 20)
    r = recall_at_k(got, exact)
    assert r == 1.0 if kind == "flat" else r >= 0.9
    excl = sp.csr_matrix((np.ones(50), exact[:, 0], np.arange(51)), shape=(50, 2000))
    got2, _ = idx.search(Q, 20, excl)
    assert not np.any(got2 == exact[:, :1]) and np.all(got2 >= 0)


def test_index_search_width_changes_without_rebuilding():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 16)).astype(np.float32)
    Q = rng.normal(size=(100, 16)).astype(np.float32)
    exact = np.argsort(-(Q @ X.T), axis=1)[:, :20]
    ivf = ItemIndex(X, IndexConfig(kind="ivf", nprobe=1))
    assert ivf.nlist > 1
    narrow = recall_at_k(ivf.search(Q, 20)[0], exact)
    ivf.set_search(nprobe=ivf.nlist)  # every cell: exact
    assert ivf.config.nprobe == ivf.nlist
    assert recall_at_k(ivf.search(Q, 20)[0], exact) == 1.0 > narrow
    hnsw = ItemIndex(X, IndexConfig(kind="hnsw"))
    hnsw.set_search(ef_search=512)
    assert hnsw.config.ef_search == 512 and hnsw.nlist == 0
    with pytest.raises(ConfigError, match="nprobe applies only to ivf indexes"):
        hnsw.set_search(nprobe=4)
    with pytest.raises(ConfigError, match="ef_search must be an integer >= 1"):
        hnsw.set_search(ef_search=0)


def test_recommender_with_an_approximate_index_matches_exact(run_dir, rec):
    approx = Recommender.load(run_dir, index=IndexConfig(kind="hnsw"))
    for u in rec.vocab.user_ids[:10]:
        assert [x.item for x in approx.recommend(u, 5)] == [x.item for x in rec.recommend(u, 5)]
    assert [x.item for x in approx.similar_items("i4", 5)] == [x.item for x in rec.similar_items("i4", 5)]
    with pytest.raises(ConfigError, match="unknown index kind"):
        IndexConfig(kind="lsh")


# ---- commands ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_export_with_original_ids(run_dir, rec, tmp_path, fmt):
    out = tmp_path / "emb"
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
    if fmt == "npy":
        ids = np.load(out / "item_ids.npy", allow_pickle=False)
        emb = np.load(out / "items.npy", allow_pickle=False)
    else:
        import pyarrow.parquet as pq

        t = pq.read_table(out / "items.parquet")
        ids = np.array(t.column("id").to_pylist())
        emb = np.array(t.column("embedding").to_pylist(), dtype=np.float32)
    assert list(ids) == list(rec.vocab.item_ids)
    np.testing.assert_allclose(emb, rec.item_embeddings.numpy(), rtol=1e-6)
    assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 2  # exists, no --overwrite


def test_update_command(run_dir, tmp_path, capsys):
    f = tmp_path / "new.csv"
    f.write_text("user,item\nzed,i1\nzed,i2\nu0,brand-new\n")
    out = tmp_path / "updated"
    assert main(["update", str(run_dir), "--interactions", str(f), "--out", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["new_users"], stats["new_items"], stats["new_edges"]) == (1, 1, 3)
    r = Recommender.load(out)
    assert "zed" in set(r.vocab.user_ids) and "brand-new" in set(r.vocab.item_ids)
    before = (run_dir / "weights.safetensors").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    assert main(["update", str(run_dir), "--interactions", str(bad)]) == 2
    assert main(["update", str(tmp_path / "missing-run"), "--interactions", str(f)]) == 2
    assert (run_dir / "weights.safetensors").read_bytes() == before
    inplace = planted_run(tmp_path / "inplace", seed=1)
    assert main(["update", str(inplace), "--interactions", str(f)]) == 0
    check_complete(inplace)
    assert "zed" in set(Recommender.load(inplace).vocab.user_ids)


@pytest.mark.parametrize("init", ["zero", "mean", "norm_mean"])
def test_serving_foldin_path_equals_the_batch_functions(rec, init):
    r = Recommender(
        rec.user_embeddings,
        rec.item_embeddings,
        rec.vocab,
        rec.seen,
        graph=rec.graph,
        foldin=FoldInConfig(init=init, item_degree="frozen"),
    )
    g = rec.graph
    hist = ["i2", "i9", "i11", "i30"]
    idx = np.sort(rec.vocab.item_index(hist))
    nb = sp.csr_matrix((np.ones(len(idx)), idx, [0, len(idx)]), shape=(1, g.n_items))
    deg_i = np.bincount(g.R.indices, minlength=g.n_items)
    e0 = initial_values(nb, g.E0[g.n_users :], init, g.median_norms()[0])
    want = fold_in(nb, trajectory_integral(adjacency(g.R), g.E0, g.ode)[g.n_users :], deg_i, e0, g.ode.t)[0]
    torch.testing.assert_close(r.embed_history(hist), want, atol=1e-5, rtol=1e-5)
