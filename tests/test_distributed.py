"""Multi-process training, sharded propagation and sharded evaluation: two gloo processes on CPU equal one."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lightgode.cli import main
from lightgode.commands.launch import launch_command
from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking, topk_masked
from lightgode.core.graph import normalized_adjacency
from lightgode.core.ode import ODEConfig, propagate
from lightgode.core.train import fit
from lightgode.data.readers import read_lightgcn
from lightgode.data.split import split_random
from lightgode.data.synth import SynthConfig, synth_edges
from lightgode.errors import ConfigError
from lightgode.models.mf import DirectAUMF
from lightgode.parallel.distributed import DataParallelDirectAU, DistContext, backend_for, init_from_env, shard_bounds
from lightgode.parallel.sharded import (
    adjacency_block,
    edge_degrees,
    full_ranking_sharded,
    partition_rows,
    propagate_sharded,
    sharded_graph,
)

from conftest import beauty_slice_file

WORKER = Path(__file__).with_name("dist_worker.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _worker_module():
    spec = importlib.util.spec_from_file_location("dist_worker", WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def beauty_slice(tmp_path_factory):
    return beauty_slice_file(tmp_path_factory, 1500)


@pytest.fixture(scope="module")
def two_ranks(beauty_slice, tmp_path_factory):
    """Run the worker in two gloo processes once; each rank's arrays and JSON."""
    out = tmp_path_factory.mktemp("ranks")
    proc = subprocess.run(
        [*TORCHRUN, str(WORKER), "--data", str(beauty_slice), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # loaded 2-core machines
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [(dict(np.load(out / f"rank{r}.npz")), json.loads((out / f"rank{r}.json").read_text())) for r in range(2)]


@pytest.fixture(scope="module")
def split(beauty_slice):
    return split_random(read_lightgcn(beauty_slice), seed=7)


def test_two_processes_use_gloo_and_split_the_graph_in_halves(two_ranks, split):
    tr = split.train
    A = normalized_adjacency(tr.n_users, tr.n_items, tr.users, tr.items)
    full_bytes = A.indptr.nbytes + A.indices.nbytes + A.data.nbytes
    infos = [info for _, info in two_ranks]
    assert all(info["backend"] == "gloo" for info in infos)
    assert infos[0]["rows"][1] == infos[1]["rows"][0] and infos[1]["rows"][1] == A.shape[0]
    for info in infos:  # each rank holds about half of Â
        assert 0.35 * full_bytes < info["block_bytes"] < 0.65 * full_bytes
        assert info["bytes_per_product"] > 0


def test_sharded_propagation_equals_single_process(two_ranks, split):
    tr = split.train
    worker = _worker_module()
    A = normalized_adjacency(tr.n_users, tr.n_items, tr.users, tr.items)
    E0 = torch.randn(A.shape[0], 16, generator=torch.Generator().manual_seed(3))
    for name, ode in worker.ODES.items():
        ref = propagate(A, E0, ode).numpy()
        assert np.abs(ref).max() > 0.1
        for arrays, _ in two_ranks:
            np.testing.assert_allclose(arrays[f"E_{name}"], ref, atol=1e-5, rtol=0)


def test_sharded_evaluation_equals_single_process(two_ranks, split):
    tr = split.train
    E = torch.from_numpy(two_ranks[0][0]["E_euler1"])
    ref = full_ranking(
        embedding_scorer(E[: tr.n_users], E[tr.n_users :]),
        split.test.to_csr(),
        tr.to_csr() + split.valid.to_csr(),
        EvalConfig(batch_size=300),
    )
    assert ref["recall@50"] > 0
    for _, info in two_ranks:
        assert info["metrics"].keys() == ref.keys()
        for k, v in ref.items():
            assert info["metrics"][k] == pytest.approx(v, abs=1e-10), k


def test_sharded_recommendation_equals_single_process(two_ranks, split):
    tr = split.train
    E = torch.from_numpy(two_ranks[0][0]["E_euler1"])
    scores, items = topk_masked(
        embedding_scorer(E[: tr.n_users], E[tr.n_users :]), np.arange(tr.n_users), tr.to_csr(), 20
    )
    for arrays, _ in two_ranks:
        np.testing.assert_array_equal(arrays["top_items"], items.numpy())
        # each rank scores half the users: BLAS may block a product of other row count differently, so scores
        # agree to float32 rounding, not bit for bit (seen on an AMD EPYC machine: 1 ulp on 2.5% of them)
        np.testing.assert_allclose(arrays["top_scores"], scores.numpy(), rtol=2e-6, atol=0)


def test_training_with_global_uniformity_follows_the_single_process_loss_curve(two_ranks, split):
    tr = split.train
    worker = _worker_module()
    cfg = worker.TRAIN
    module = DirectAUMF(tr.n_users, tr.n_items, cfg.dim, cfg.gamma, generator=torch.Generator().manual_seed(5))
    ref = [row["loss"] for row in fit(module, tr.users, tr.items, cfg, seed=11).history]
    got = [info["loss"]["global"] for _, info in two_ranks]
    assert ref[-1] < ref[0] - 0.1
    assert got[0] == got[1]
    np.testing.assert_allclose(got[0], ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(two_ranks[0][0]["user_global"], module.user.detach().numpy(), atol=1e-3)


def test_training_with_per_rank_uniformity_keeps_replicas_equal_and_learns(two_ranks):
    (a, ia), (b, ib) = two_ranks
    np.testing.assert_array_equal(a["user_rank"], b["user_rank"])
    loss = ia["loss"]["rank"]
    assert loss[-1] < loss[0] - 0.1
    assert loss != ia["loss"]["global"]  # a different objective: uniformity within each rank's shard


def test_torchrun_train_writes_one_run_equal_to_single_process(beauty_slice, tmp_path):
    flags = [
        "--data",
        str(beauty_slice),
        "--epochs",
        "2",
        "--dim",
        "16",
        "--lr",
        "0.01",
        "--batch-size",
        "512",
        "--threads",
        "1",
        "--quiet",
    ]  # checkpoints on: rank 0 writes them, the finished run removes them
    multi, single = tmp_path / "multi", tmp_path / "single"
    proc = subprocess.run(
        [*TORCHRUN, "-m", "lightgode", "train", *flags, "--uniformity", "global", "--out", str(multi)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # loaded 2-core machines
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("run written to") == 1  # rank 0 alone prints and writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multi"]
    assert main(["train", *flags, "--out", str(single)]) == 0
    info = json.loads((multi / "train.json").read_text())
    assert info["distributed"]["world_size"] == 2 and len(info["distributed"]["peak_rss_mb_per_rank"]) == 2
    hist = [np.genfromtxt(d / "history.csv", delimiter=",", names=True) for d in (multi, single)]
    np.testing.assert_allclose(hist[0]["loss"], hist[1]["loss"], atol=1e-4, rtol=0)
    m = [json.loads((d / "metrics.json").read_text()) for d in (multi, single)]
    for k, v in m[1]["test"].items():
        assert m[0]["test"][k] == pytest.approx(v, abs=2e-3), k


def test_backend_follows_the_device():
    assert backend_for("cpu") == "gloo"
    assert backend_for(torch.device("cuda", 0)) == "nccl"
    ctx = init_from_env({}, "cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)
    with pytest.raises(ConfigError, match="torchrun"):
        init_from_env({"WORLD_SIZE": "2"}, "cpu")


def test_global_uniformity_gradient_equals_directau_in_one_process():
    module = DirectAUMF(40, 30, 8, 0.7, generator=torch.Generator().manual_seed(0))
    users, items = torch.randint(0, 40, (64,)), torch.randint(0, 30, (64,))
    ref_loss = module.compute_grads(users, items)
    ref = module.user.grad.clone(), module.item.grad.clone()
    loss = DataParallelDirectAU(module, DistContext(), "global").compute_grads(users, items)
    assert float(loss) == pytest.approx(float(ref_loss), abs=1e-6)
    torch.testing.assert_close(module.user.grad, ref[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(module.item.grad, ref[1], atol=1e-6, rtol=1e-5)


def test_blocks_equal_rows_of_the_full_adjacency_and_balance_nonzeros():
    rng = np.random.default_rng(0)
    nu, ni = 300, 200
    users, items = rng.integers(0, nu, 4000), rng.integers(0, ni, 4000)
    A = normalized_adjacency(nu, ni, users, items)
    u, i, du, di = edge_degrees(nu, ni, users, items)
    offsets = partition_rows(np.concatenate([du, di]), 3)
    assert offsets[0] == 0 and offsets[-1] == nu + ni and np.all(np.diff(offsets) > 0)
    nnz = [A[a:b].nnz for a, b in zip(offsets[:-1], offsets[1:])]
    assert max(nnz) < 1.2 * A.nnz / 3
    for a, b in [(0, 500), (17, 333), (299, 301)]:
        block = adjacency_block(nu, ni, u, i, du, di, a, b)
        assert (block != A[a:b]).nnz == 0 and np.array_equal(block.data, A[a:b].data)
    one = sharded_graph(nu, ni, users, items, DistContext())  # a single rank is the whole graph
    E0 = torch.randn(nu + ni, 4)
    torch.testing.assert_close(
        propagate_sharded(one, E0, ODEConfig(t=1.2, solver="midpoint", steps=2)),
        propagate(A, E0, ODEConfig(t=1.2, solver="midpoint", steps=2)),
    )
    with pytest.raises(ConfigError, match="fixed-step"):
        propagate_sharded(one, E0, ODEConfig(solver="dopri5"))
    rel = sp.random(nu, ni, density=0.02, format="csr", random_state=1)
    score = embedding_scorer(torch.randn(nu, 4), torch.randn(ni, 4))
    assert full_ranking_sharded(score, rel, None, EvalConfig(), DistContext()) == pytest.approx(
        full_ranking(score, rel, None, EvalConfig())
    )


def test_shard_bounds_cover_every_item_once():
    for n, w in [(0, 2), (1, 2), (7, 3), (256, 2)]:
        b = shard_bounds(n, w)
        assert b[0] == 0 and b[-1] == n and np.all(np.diff(b) >= 0) and np.diff(b).max() - np.diff(b).min() <= 1


def test_synth_is_seeded_distinct_and_power_law():
    cfg = SynthConfig(users=5000, items=2000, edges=50_000, seed=3)
    u, i = synth_edges(cfg)
    u2, i2 = synth_edges(cfg)
    assert np.array_equal(u, u2) and np.array_equal(i, i2)
    assert len(u) == 50_000 and len(np.unique(u.astype(np.int64) * cfg.items + i)) == 50_000
    deg = np.bincount(i, minlength=cfg.items)
    assert deg.max() > 20 * deg.mean()  # heavy tail: a uniform draw would give about 2x the mean
    assert not np.array_equal(synth_edges(SynthConfig(users=5000, items=2000, edges=50_000, seed=4))[1], i)


def test_synth_cli_writes_a_readable_file_and_refuses_bad_sizes(tmp_path, capsys):
    out = tmp_path / "g.txt"
    assert main(["synth", "--users", "300", "--items", "100", "--edges", "2000", "--seed", "1", "--out", str(out)]) == 0
    inter = read_lightgcn(out)
    assert len(inter) == 2000
    bad = tmp_path / "bad.csv"
    assert main(["synth", "--users", "3", "--items", "3", "--edges", "100", "--out", str(bad)]) == 2
    assert "edges" in capsys.readouterr().err and not bad.exists()


def test_launch_builds_a_torchrun_command_and_checks_it():
    cmd = launch_command(3, ["train", "--data", "x"])
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3", "-m"]
    assert cmd[-3:] == ["train", "--data", "x"]
    with pytest.raises(ConfigError):
        launch_command(0, ["train"])
    with pytest.raises(ConfigError):
        launch_command(2, ["serve"])
