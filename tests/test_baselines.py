"""Baselines in the same harness: hand-worked checks, real-data training, run-directory round trips,
benchmark resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from lightgode.atomic import write_json
from lightgode.bench.collect import aggregate, collect, in_progress, select_variants, training_seconds
from lightgode.bench.ledger import CSV_COLUMNS, changed_settings
from lightgode.bench.report import table
from lightgode.bench.runner import _refit_is_current, refit_config, run_benchmark
from lightgode.bench.settings import BenchmarkConfig, run_config, run_dir, variants
from lightgode.core.config import BaselineConfig, RunConfig, TrainConfig
from lightgode.core.evaluate import EvalConfig, full_ranking
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.losses import bpr
from lightgode.data.filters import filter_kcore
from lightgode.data.interactions import Interactions
from lightgode.data.readers import read_lightgcn
from lightgode.data.split import split_random
from lightgode.errors import ConfigError
from lightgode.models import build_model
from lightgode.models.bpr import MFBPR, NegativeSampler
from lightgode.models.conv import MFConv
from lightgode.models.filters import BSPM, GFCF
from lightgode.models.lightgcn import LightGCNModule, layer_mean
from lightgode.models.mf import MFEmbeddings
from lightgode.runs import store as artifacts
from lightgode.runs.store import load_model
from lightgode.runs.workflow import evaluate_model, train_run

from conftest import beauty_slice_file, stop_at

EVAL = EvalConfig(ks=(20,), batch_size=512, valid_metric="ndcg@20")


def _inter(users, items, n_users, n_items) -> Interactions:
    return Interactions(
        np.array([f"u{i}" for i in range(n_users)]),
        np.array([f"i{i}" for i in range(n_items)]),
        np.asarray(users, dtype=np.int32),
        np.asarray(items, dtype=np.int32),
    )


@pytest.fixture(scope="module")
def beauty_slice(tmp_path_factory) -> Path:
    return beauty_slice_file(tmp_path_factory, 3000)


@pytest.fixture(scope="module")
def split(beauty_slice):
    return split_random(filter_kcore(read_lightgcn(beauty_slice), 5, 5), (0.8, 0.1, 0.1), seed=1)


# --- hand-worked examples -------------------------------------------------------------------------------------


def test_bpr_loss_by_hand():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = (np.log(1 + np.exp(-1.0)) + np.log(1 + np.exp(1.0))) / 2
    assert float(bpr(pos, neg)) == pytest.approx(expected, rel=1e-6)


def test_layer_mean_by_hand():
    # One user connected to two items: Â has 1/sqrt(2) between the user and each item.
    A = to_torch(normalized_adjacency(1, 2, np.array([0, 0]), np.array([0, 1])))
    E0 = torch.tensor([[1.0], [2.0], [4.0]])  # user, item0, item1
    c = 2**-0.5
    E1 = torch.tensor([[c * 6.0], [c * 1.0], [c * 1.0]])
    E2 = torch.tensor([[c * c * 2.0], [c * c * 6.0], [c * c * 6.0]])
    assert torch.allclose(layer_mean(A, E0, 2), (E0 + E1 + E2) / 3, atol=1e-6)
    assert torch.equal(layer_mean(A, E0, 0), E0)


def test_negative_sampler_avoids_training_items():
    train = _inter([0, 0, 0, 1], [0, 1, 2, 3], 2, 5)
    s = NegativeSampler(train)
    neg = s.sample(torch.zeros(4000, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(neg.tolist()) == {3, 4}  # user 0 saw 0, 1, 2
    counts = np.bincount(neg.numpy(), minlength=5)
    assert abs(counts[3] - counts[4]) < 300  # uniform over the unseen items


@pytest.mark.parametrize("layers", [0, 1, 3])
def test_lightgcn_hand_gradient_equals_autograd(layers):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 30), rng.integers(0, 9, 30)
    train = _inter(users, items, 7, 9)
    A = to_torch(normalized_adjacency(7, 9, users, items))
    grads = []
    for hand in (True, False):
        m = LightGCNModule(7, 9, 4, 0.1, NegativeSampler(train), A, layers, generator=torch.Generator().manual_seed(1))
        u, i = torch.from_numpy(users[:12]).long(), torch.from_numpy(items[:12]).long()
        loss = m.compute_grads(u, i) if hand else MFEmbeddings.compute_grads(m, u, i)
        grads.append((float(loss), m.user.grad.clone(), m.item.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-5)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)
    assert torch.allclose(grads[0][2], grads[1][2], atol=1e-6)


def test_gf_cf_and_bspm_equal_dense_computation():
    rng = np.random.default_rng(3)
    R = (rng.random((12, 10)) < 0.35).astype(np.float32)
    R[np.arange(10), np.arange(10)] = 1.0  # every item has a user, every user 10 first rows an item
    R[10:, 0] = 1.0
    u, i = np.nonzero(R)
    train = _inter(u, i, 12, 10)
    du, di = R.sum(1), R.sum(0)
    Rn = R / np.sqrt(du)[:, None] / np.sqrt(di)[None, :]
    P = Rn.T @ Rn
    k = 4
    vt = np.linalg.svd(Rn)[2][:k]
    P_idl = np.diag(di**-0.5) @ vt.T @ vt @ np.diag(di**0.5)
    users = torch.arange(12)
    gf = GFCF(BaselineConfig(alpha=(0.3,), rank=k), EVAL).fit(train)
    assert np.allclose(gf.score_fn()(users).numpy(), R @ P + 0.3 * R @ P_idl, atol=1e-4)
    b = BSPM(BaselineConfig(idl_beta=(0.2,), t_sharp=(0.5,), rank=k, steps_sharp=2, sharp_solver="euler"), EVAL).fit(
        train
    )
    x = R @ P + 0.2 * R @ P_idl  # one Euler step of length 1 of the blurring ODE, plus the ideal term
    for _ in range(2):
        x = x - 0.25 * x @ P
    assert np.allclose(b.score_fn()(users).numpy(), x, atol=1e-4)


def test_mf_conv_with_zero_layers_is_the_mf(split):
    mf = MFBPR(TrainConfig(epochs=2, batch_size=512), eval=EVAL, seed=0).fit(split.train)
    conv = MFConv(baseline=BaselineConfig(layers=(0,)), eval=EVAL).with_base(mf.E0_).fit(split.train)
    assert torch.equal(conv.user_embeddings_, mf.user_embeddings_)
    assert torch.equal(conv.item_embeddings_, mf.item_embeddings_)
    three = conv.with_layers(3)
    assert not torch.allclose(three.item_embeddings_, mf.item_embeddings_)


def test_bad_baseline_settings_raise():
    with pytest.raises(ConfigError, match="layers"):
        BaselineConfig(layers=(-1,))
    with pytest.raises(ConfigError, match="conv_base"):
        RunConfig().override({"baseline": {"conv_base": "svd"}})
    with pytest.raises(ConfigError, match="unknown model"):
        build_model(RunConfig(model="nope"))
    with pytest.raises(ConfigError, match="unknown dataset"):
        BenchmarkConfig(datasets=("no-such-dataset",))


# --- every model on real data ---------------------------------------------------------------------------------

MODEL_SETTINGS = {
    "pop": {},
    "gf-cf": {"baseline": {"alpha": [0.0, 0.3], "rank": 32}},
    "bspm": {"baseline": {"idl_beta": [0.2], "t_sharp": [0.5, 1.0], "rank": 32}},
    "mf-bpr": {"train": {"epochs": 8, "batch_size": 512, "lr": 5e-3}},
    "lightgcn": {"train": {"epochs": 8, "batch_size": 512, "lr": 5e-3}, "baseline": {"layers": [2]}},
    "mf-conv": {"train": {"epochs": 8, "batch_size": 512, "lr": 5e-3}, "baseline": {"layers": [0, 1, 2, 3]}},
    "directau": {"train": {"epochs": 4, "batch_size": 512, "lr": 5e-3}},
    "lightgode": {"train": {"epochs": 4, "batch_size": 512, "lr": 5e-3}},
}


def test_every_model_beats_random_and_round_trips(split, tmp_path):
    torch.set_num_threads(1)
    train_csr, valid_csr = split.train.to_csr(), split.valid.to_csr()
    gen = torch.Generator().manual_seed(0)
    random_ndcg = full_ranking(
        lambda u: torch.rand(len(u), split.train.n_items, generator=gen), valid_csr, train_csr, EVAL
    )["ndcg@20"]
    for name, over in MODEL_SETTINGS.items():
        cfg = RunConfig(eval=EVAL, seed=3).override({"model": name, **over})
        model = build_model(cfg).fit(split.train, split.valid)
        ndcg = model.evaluate(split.valid, [split.train])["ndcg@20"]
        assert ndcg > 2 * random_ndcg, (name, ndcg, random_ndcg)
        if name in ("mf-bpr", "lightgcn"):  # "loss goes down"
            losses = [r["loss"] for r in model.result_.history]
            assert losses[-1] < losses[0], name


def test_gf_cf_beats_popularity_on_a_slice(split):
    torch.set_num_threads(1)
    pop = build_model(RunConfig(model="pop", eval=EVAL)).fit(split.train)
    cfg = RunConfig(eval=EVAL, seed=3).override({"model": "gf-cf", "baseline": {"rank": 32}})
    gf = build_model(cfg).fit(split.train, split.valid)
    p, g = (m.evaluate(split.valid, [split.train])["ndcg@20"] for m in (pop, gf))
    assert g > p


# --- the benchmark --------------------------------------------------------------------------------------------


def test_benchmark_runs_resumes_and_round_trips(beauty_slice, tmp_path):
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("pop", "gf-cf", "mf-bpr", "mf-conv"),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
    )
    # An interrupted mf-bpr run: killed after its second epoch, its checkpoint left behind.
    cfg = run_config(bench, str(beauty_slice), "mf-bpr", 2020)
    killed = run_dir(bench, str(beauty_slice), "mf-bpr", 2020)
    killed.parent.mkdir(parents=True)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, killed, on_epoch=stop_at(2))
    assert not killed.exists()
    pending = in_progress(tmp_path / "runs", "paper")  # the report lists it, from its checkpoint (epoch 1 saved)
    assert [(r["model"], r["epoch"]) for r in pending] == [("mf-bpr", 1)]
    assert 0 < pending[0]["best_valid_ndcg@20"] < 1
    first = run_benchmark(bench)
    assert len(first.done) == 4 and not first.skipped
    info = artifacts.read_json(killed / "train.json")
    assert info["epochs_run"] == 3  # continued from the checkpoint to the end
    conv_info = artifacts.read_json(run_dir(bench, str(beauty_slice), "mf-conv", 2020) / "train.json")
    assert conv_info["base_run"] == str(killed) and "selected" in conv_info
    # A second invocation skips everything; a damaged run is redone, alone.
    stamp = (killed / "metrics.json").stat().st_mtime_ns
    again = run_benchmark(bench)
    assert not again.done and len(again.skipped) == 4
    gf = run_dir(bench, str(beauty_slice), "gf-cf", 2020)
    (gf / artifacts.MARKER).unlink()
    lock = gf.with_name(gf.name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:  # another live process holds the damaged run's lock: left to it
        assert holder.stdout.readline().strip() == "held"
        held = run_benchmark(bench)
        assert not held.done and len(held.skipped) == 3
    finally:
        holder.kill()
        holder.wait()
    assert lock.is_file()  # the holder died without releasing: the kernel dropped its lock, the file stays
    third = run_benchmark(bench)  # the lock's process is gone: the run is redone
    assert [p.parent.name for p in third.done] == ["gf-cf"]
    assert (killed / "metrics.json").stat().st_mtime_ns == stamp
    rows = collect(tmp_path / "runs", "paper")
    assert {r["model"] for r in rows} == {"pop", "gf-cf", "mf-bpr", "mf-conv"}
    assert not in_progress(tmp_path / "runs", "paper")
    # the resumed run's training time counts the epochs done before the interruption too
    resumed = next(r for r in rows if r["model"] == "mf-bpr")
    assert resumed["fit_seconds"] >= info["seconds"]["train_epochs"] + info["seconds"]["validation"] > 0
    assert training_seconds({"fit": 1.0, "train_epochs": 3.0, "validation": 1.0}) == 4.0  # earlier processes
    assert training_seconds({"fit": 5.0, "train_epochs": 3.0, "validation": 1.0}) == 5.0
    # Every run reloads to the same test metrics.
    for r in rows:
        run = artifacts.load_run(run_dir(bench, str(beauty_slice), r["model"], 2020))
        metrics = evaluate_model(load_model(run), run.split)
        assert metrics["test"]["ndcg@20"] == pytest.approx(run.metrics["test"]["ndcg@20"], abs=1e-6), r["model"]


HOLD_LOCK = (
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('held', flush=True); "
    "time.sleep(120)"
)
"""A process that holds a run's lock as a benchmark run process does, until it is killed."""


def test_run_lock_is_taken_once_and_a_stale_file_blocks_nothing(tmp_path):
    from lightgode.locks import held_elsewhere, release, try_acquire

    lock = tmp_path / "seed2020.lock"
    fd = try_acquire(lock)
    assert fd is not None and lock.read_text().strip() == str(os.getpid())
    assert try_acquire(lock) is None  # a second taker (another open file, as another process would be) is refused
    release(lock, fd)
    assert not lock.exists() and not held_elsewhere(lock)
    stranger = subprocess.Popen(["sleep", "60"])  # a live process that is no benchmark, under a left-over id
    try:
        lock.write_text(str(stranger.pid))
        assert not held_elsewhere(lock)
    finally:
        stranger.kill()
        stranger.wait()
    lock.write_text("123456789")  # a dead process
    assert not held_elsewhere(lock)


def test_a_run_process_that_finds_its_run_taken_leaves_it_and_is_not_counted(tmp_path):
    from lightgode.bench.execute import execute, run_isolated
    from lightgode.bench.runner import BenchmarkProgress, _run_spec

    out = tmp_path / "runs" / "paper" / "d" / "pop" / "seed2020"
    out.parent.mkdir(parents=True)
    lock = out.with_name(out.name + ".lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    spec = {"config": {}, "out": str(out)}  # never read: the lock is checked first
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_isolated(spec) is False  # the spawned run process exits with LEFT_ALONE, not an error
        assert execute(spec) is False
        progress, said = BenchmarkProgress(), []
        bench = BenchmarkConfig(
            datasets=("amazon-beauty",), models=("pop",), seeds=(2020,), out_dir=tmp_path / "runs", isolate=False
        )
        _run_spec(bench, spec, progress, said.append)
        assert not progress.done and said and "left to it" in said[0]
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()


def test_collect_counts_only_run_directories_and_recorded_rows_once(tmp_path):
    from lightgode.bench.ledger import read_recorded

    runs = tmp_path / "runs"
    for name in ("seed2020", "seed2020.old", "seed2020.partial", "seed2020-gamma5.tuned.partial"):
        _fake_run(runs / "paper" / "d" / "lightgode" / name)
    rows = collect(runs, "paper")
    assert [(r["model"], r["variant"]) for r in rows] == [("lightgode", "")]
    path = tmp_path / "benchmark.csv"
    line = "paper,d,pop,2020,,0.1,0.1,0.1,0,0,0,0,1,100,False,-"
    path.write_text(",".join(CSV_COLUMNS) + "\n" + line + "\n" + line.replace("0.1", "0.2") + "\n")
    assert [r["test_ndcg@20"] for r in read_recorded(path)] == [0.1]


def _fake_run(path: Path) -> None:
    """A complete run directory with only what ``collect`` reads."""
    path.mkdir(parents=True)
    write_json(path / "config.json", {"seed": 2020, "train": {"epochs": 3}})
    write_json(path / "metrics.json", {"valid": {"ndcg@20": 0.1}, "test": {"ndcg@20": 0.1, "recall@20": 0.2}})
    write_json(
        path / "train.json",
        {
            "best_epoch": 1,
            "epochs_run": 3,
            "stopped_early": True,
            "seconds": {"fit": 5.0, "train_epochs": 3.0, "validation": 1.0},
        },
    )
    for name in artifacts.REQUIRED:
        if not (path / name).exists():
            (path / name).write_text("")
    files = {f.name: f.stat().st_size for f in path.iterdir()}
    write_json(path / artifacts.MARKER, {"files": files})


def test_training_seconds_keep_post_training_on_top_of_a_resumed_source():
    # a source run resumed across processes: its last fit (20 s) is below its epochs' sum (95 s)
    assert training_seconds({"fit": 20.0, "train_epochs": 80.0, "validation": 15.0}) == 95.0
    assert training_seconds({"fit": 50.0, "train_epochs": 80.0, "validation": 15.0, "post_training": 30.0}) == 125.0
    assert training_seconds({"fit": 130.0, "train_epochs": 80.0, "validation": 15.0, "post_training": 30.0}) == 130.0


def test_changed_settings_names_the_first_difference_and_ignores_what_does_not_change_a_run():
    assert run_config(BenchmarkConfig(), "amazon-beauty", "lightgcn", 2020).train.sampling == "pairs"
    bench = BenchmarkConfig(datasets=("gowalla",), protocol="lightgcn-gowalla", threads=1)
    cfg = run_config(bench, "gowalla", "lightgcn", 2020)
    assert (cfg.train.sampling, cfg.train.epochs) == ("users", 1000)  # on LightGCN's split, as LightGCN's code
    made = cfg.to_dict() | {"versions": {"torch": "x"}, "threads": 2}
    made["baseline"] = made["baseline"] | {"max_train_seconds": 600.0, "layers": [2]}  # cap; a chosen value
    assert changed_settings(made, cfg) is None
    made["train"] = {k: v for k, v in made["train"].items() if k != "sampling"}  # written before the field existed
    assert changed_settings(made, cfg) == "train.sampling: pairs -> users"
    assert changed_settings(made | {"seed": 7}, cfg) == "seed: 7 -> 2020"
    assert changed_settings({"train": {"lr": -1}}, cfg).startswith("unreadable settings")


def test_benchmark_retrains_runs_and_checkpoints_made_with_other_settings(beauty_slice, tmp_path):
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr",),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
    )
    cfg = run_config(bench, str(beauty_slice), "mf-bpr", 2020)
    old = cfg.override({"train": {"sampling": "users"}})
    out = run_dir(bench, str(beauty_slice), "mf-bpr", 2020)
    out.parent.mkdir(parents=True)
    train_run(old, out)
    said: list[str] = []
    first = run_benchmark(bench, report=said.append)
    assert first.done == [out] and any("other settings (train.sampling: users -> pairs)" in m for m in said)
    assert artifacts.read_json(out / "config.json")["train"]["sampling"] == "pairs"
    assert run_benchmark(bench).skipped == [out]
    # an interrupted run of the old settings is not resumed with them: it starts again with the benchmark's
    shutil.rmtree(out)
    with pytest.raises(KeyboardInterrupt):
        train_run(old, out, on_epoch=stop_at(2))
    assert in_progress(tmp_path / "runs", "paper")[0]["epoch"] == 1
    assert run_benchmark(bench).done == [out]
    assert artifacts.read_json(out / "config.json")["train"]["sampling"] == "pairs"
    assert artifacts.read_json(out / "train.json")["epochs_run"] == 3


def test_benchmark_command_writes_report(beauty_slice, tmp_path):
    from lightgode.cli import main

    out, docs = tmp_path / "runs", tmp_path / "docs"
    rc = main(
        [
            "benchmark",
            "--datasets",
            str(beauty_slice),
            "--models",
            "pop",
            "gf-cf",
            "--seeds",
            "1",
            "--quick",
            "--out-dir",
            str(out),
            "--docs-dir",
            str(docs),
        ]
    )
    assert rc == 0
    text = (docs / "benchmark.md").read_text()
    assert "| beauty_slice | gf-cf | 1 |" in text and "| beauty_slice | pop | 1 |" in text
    assert (docs / "benchmark_paper_beauty_slice.png").stat().st_size > 1000
    assert len((docs / "benchmark.csv").read_text().splitlines()) == 3
    # A run directory gone (a fresh checkout keeps docs/, not runs/): its recorded row stays, marked as such.
    shutil.rmtree(out / "paper" / "beauty_slice" / "pop")
    assert main(["benchmark", "--report-only", "--out-dir", str(out), "--docs-dir", str(docs)]) == 0
    text = (docs / "benchmark.md").read_text()
    assert "| beauty_slice | pop | 1 |" in text and "1 of the 2 runs behind this table are not on this disk" in text
    assert len((docs / "benchmark.csv").read_text().splitlines()) == 3
    assert main(["benchmark", "--report-only", "--drop-recorded", "--out-dir", str(out), "--docs-dir", str(docs)]) == 0
    assert "| beauty_slice | pop |" not in (docs / "benchmark.md").read_text()
    assert len((docs / "benchmark.csv").read_text().splitlines()) == 2
    (docs / "benchmark.csv").write_text("protocol,dataset\npaper,x\n")
    assert main(["benchmark", "--report-only", "--out-dir", str(out), "--docs-dir", str(docs)]) == 2
    fresh = tmp_path / "fresh"  # ... and a training invocation stops before it trains anything
    assert (
        main(
            [
                "benchmark",
                "--datasets",
                str(beauty_slice),
                "--models",
                "pop",
                "--seeds",
                "1",
                "--quick",
                "--out-dir",
                str(fresh),
                "--docs-dir",
                str(docs),
            ]
        )
        == 2
    )
    assert not fresh.exists()
    rc = main(["benchmark", "--datasets", "x", "--models", "nope", "--out-dir", str(out), "--docs-dir", str(docs)])
    assert rc == 2


def test_analyses_write_tables_and_plots(beauty_slice, tmp_path):
    from lightgode.cli import main

    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr", "lightgcn", "lightgode"),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
    )
    run_benchmark(bench)
    runs, docs = tmp_path / "runs" / "paper" / "beauty_slice", tmp_path / "docs"
    assert main(["analyze", "conv", "--runs-dir", str(runs), "--docs-dir", str(docs)]) == 0
    text = (docs / "analysis_conv_beauty_slice.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line and "model" not in line]
    assert [r.split(" | ")[0] for r in rows] == [
        "| MF (BPR)",
        "| MF + 3 layers at test",
        "| LightGCN without conv at test",
        "| LightGCN",
    ]
    assert rows[-1].endswith("| 100.0% |")
    assert "- lightgcn: best epoch " in text and "of 3, reached the epoch limit" in text  # --quick: 3 epochs
    assert main(["analyze", "discrepancy", "--runs-dir", str(runs), "--docs-dir", str(docs)]) == 0
    # The report states the claims (accuracy and training time, LightGODE against LightGCN) from these runs.
    from lightgode.bench.report import write_report

    write_report(tmp_path / "runs", docs, "cmd")
    agg = {r["model"]: r for r in aggregate(collect(tmp_path / "runs", "paper"))}
    claim = next(
        line
        for line in (docs / "benchmark.md").read_text().splitlines()
        if line.startswith("- beauty_slice: LightGODE")
    )
    ratio = agg["lightgode"]["fit_seconds"][0] / agg["lightgcn"]["fit_seconds"][0]
    assert f"{agg['lightgcn']['test_ndcg@20'][0]:.4f}" in claim and f"(ratio {ratio:.3f}" in claim
    text = (docs / "analysis_discrepancy_beauty_slice.md").read_text()
    mf_rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| mf-bpr + L layers")]
    assert len(mf_rows) == 11 and float(mf_rows[0][3].rstrip(" |")) == pytest.approx(0.0, abs=1e-6)
    dists = [float(r[3].rstrip(" |")) for r in mf_rows]
    assert dists[1] > 0 and dists[-1] > dists[1]  # propagation moves embeddings away from E(0)
    assert (docs / "analysis_discrepancy_beauty_slice.png").stat().st_size > 1000


def test_filter_runs_are_refused_by_recommend_in_one_line(beauty_slice, tmp_path, capsys):
    from lightgode.cli import main

    out = tmp_path / "gf"
    rc = main(["train", "--data", str(beauty_slice), "--model", "gf-cf", "--rank", "16", "--out", str(out), "--quiet"])
    assert rc == 0
    capsys.readouterr()
    assert main(["recommend", str(out), "--user", "0", "-k", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "without embeddings" in err[0]


def test_benchmark_grid_trains_each_point_and_keeps_the_best_on_validation(beauty_slice, tmp_path):
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr", "mf-conv", "pop"),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
        grid=(("lr", (1e-3, 5e-2)), ("reg", (1e-4,)), ("gamma", (2.0,))),
    )
    # the model's own lr (1e-3) and reg (1e-4) are the unnamed point; gamma does not apply to BPR models
    assert variants(bench, str(beauty_slice), "mf-bpr") == [{}, {"lr": 5e-2}]
    assert variants(bench, str(beauty_slice), "pop") == [{}]
    done = run_benchmark(bench).done
    assert sorted(p.name for p in done if p.parent.name == "mf-bpr") == ["seed2020", "seed2020-lr0.05"]
    rows = collect(tmp_path / "runs", "paper")
    bpr = {r["variant"]: r for r in rows if r["model"] == "mf-bpr"}
    assert set(bpr) == {"", "lr0.05"} and bpr["lr0.05"]["settings"].startswith("lr 0.05,")
    best = max(bpr.values(), key=lambda r: r["valid_ndcg@20"])
    agg = {r["model"]: r for r in aggregate(rows)}
    assert agg["mf-bpr"]["grid_points"] == 2 and agg["mf-bpr"]["test_ndcg@20"][0] == best["test_ndcg@20"]
    conv = artifacts.read_json(run_dir(bench, str(beauty_slice), "mf-conv", 2020) / "train.json")
    assert Path(conv["base_run"]).name == ("seed2020" + (f"-{best['variant']}" if best["variant"] else ""))
    assert "(best of 2 grid points)" in "\n".join(table(aggregate(rows), "paper"))
    with pytest.raises(ConfigError, match="cannot search"):
        BenchmarkConfig(grid=(("dim", (32.0,)),))


def test_recorded_rows_count_as_complete_grid_points(beauty_slice, tmp_path):
    """A fresh checkout keeps docs/benchmark.csv, not runs/: a recorded run with the benchmark's settings is not
    trained again, a grid adds only its new points, and mf-conv is rebuilt only when a point on disk wins."""
    from lightgode.bench.ledger import read_recorded
    from lightgode.bench.report import write_report

    torch.set_num_threads(1)
    out, docs = tmp_path / "runs", tmp_path / "docs"
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr", "mf-conv", "pop"),
        seeds=(2020,),
        out_dir=out,
        quick=True,
        isolate=False,
    )
    assert len(run_benchmark(bench).done) == 3
    write_report(out, docs, "test")
    shutil.rmtree(out)
    recorded = read_recorded(docs / "benchmark.csv")
    progress = run_benchmark(bench, recorded=recorded)
    assert not progress.done and len(progress.recorded) == 3 and not out.exists()
    # a recorded row made with other settings (here lr) is trained again
    changed = [
        r | {"settings": r["settings"].replace("lr 0.001", "lr 0.003")} if r["model"] == "mf-bpr" else r
        for r in recorded
    ]
    assert [p.parent.name for p in run_benchmark(bench, recorded=changed).done] == ["mf-bpr", "mf-conv"]
    shutil.rmtree(out)
    grid = replace(bench, grid=(("lr", (5e-2,)),))
    for recorded_wins in (True, False):  # the recorded mf-bpr point wins on validation, then loses
        rows = [r | {"valid_ndcg@20": 1.0 if recorded_wins else 0.0} if r["model"] == "mf-bpr" else r for r in recorded]
        done = run_benchmark(grid, recorded=rows).done
        if recorded_wins:
            assert [p.name for p in done] == ["seed2020-lr0.05"]  # mf-conv's recorded row stands
        else:
            assert [p.parent.name for p in done] == ["mf-conv"]  # built on the point on disk, with its lr
            conv = artifacts.read_json(run_dir(grid, str(beauty_slice), "mf-conv", 2020) / "config.json")
            assert conv["train"]["lr"] == 5e-2
    assert len(run_benchmark(grid, recorded=[]).done) == 2  # nothing recorded: the missing runs are trained
    # the loop weighs the points the report weighs: a point on disk from an earlier grid counts without --grid
    from lightgode.bench.ledger import chosen_point, recorded_index, recorded_row

    known = recorded_index(rows, "paper")
    point = chosen_point(bench, str(beauty_slice), "mf-bpr", 2020, known)
    best = max(collect(out, "paper"), key=lambda r: r["valid_ndcg@20"] if r["model"] == "mf-bpr" else -1)
    assert point.path is not None and point.path.name == "seed2020" + ("-" + best["variant"] if best["variant"] else "")
    assert point.variant == ({"lr": 5e-2} if best["variant"] else {})
    # a run begun again (a checkpoint on disk) is resumed, not skipped as recorded
    (out / "paper" / "beauty_slice" / "pop").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "paper" / "beauty_slice" / "pop")
    (out / "paper" / "beauty_slice" / "pop" / "seed2020.ckpt").mkdir(parents=True)
    pop_only = replace(bench, models=("pop",))
    assert [p.name for p in run_benchmark(pop_only, recorded=recorded).done] == ["seed2020"]
    # a row from a longer run than the settings allow is not the run asked for
    longer = [r | {"epochs_run": 10**6} if r["model"] == "pop" else r for r in recorded]
    assert recorded_row(recorded_index(longer, "paper"), bench, str(beauty_slice), "pop", 2020, {}) is None
    # a row stopped by a wall-time cap stands only while the benchmark's cap is no larger
    capped = recorded_index([r | {"capped": True, "epochs_run": 2, "fit_seconds": 90.0} for r in recorded], "paper")
    for minutes, trusted in ((1.0, True), (2.0, False), (0.0, False)):
        row = recorded_row(capped, replace(bench, max_train_minutes=minutes), str(beauty_slice), "pop", 2020, {})
        assert (row is not None) == trusted


def test_recorded_settings_leave_out_only_the_values_chosen_on_validation():
    from lightgode.bench.ledger import same_settings
    from lightgode.bench.settings import settings_summary

    cfg = run_config(BenchmarkConfig(), "amazon-beauty", "bspm", 2020)
    mine = settings_summary(cfg.to_dict())
    assert "rk4" in mine and same_settings(mine.replace("beta 0.0", "beta 0.5").replace("T_s 1.0", "T_s 2.5"), cfg)
    assert not same_settings(mine.replace("(rk4)", "(euler)"), cfg)  # the solver is a setting, not a choice
    assert not same_settings(mine.replace("rank 256", "rank 128"), cfg)
    lightgcn = run_config(BenchmarkConfig(), "amazon-beauty", "lightgcn", 2020)
    assert not same_settings(settings_summary(lightgcn.to_dict()).replace("L 3", "L 4"), lightgcn)  # fixed, not chosen


def test_benchmark_refit_retrains_the_chosen_run_on_the_whole_training_file(gowalla_like, tmp_path):
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=("gowalla",),
        models=("gf-cf", "mf-bpr"),
        seeds=(2020,),
        protocol="lightgcn-gowalla",
        data_dir=str(gowalla_like),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
        refit=True,
    )
    first = run_benchmark(bench)
    assert sorted(p.name for p in first.done) == ["seed2020", "seed2020", "seed2020.refit", "seed2020.refit"]
    for model in ("gf-cf", "mf-bpr"):
        chosen = run_dir(bench, "gowalla", model, 2020)
        refit = chosen.with_name("seed2020.refit")
        sizes, refit_sizes = (artifacts.read_json(p / "train.json")["dataset"] for p in (chosen, refit))
        assert refit_sizes["valid"] == 0 and refit_sizes["train"] == sizes["train"] + sizes["valid"]
        assert refit_sizes["test"] == sizes["test"]  # the same fixed test file
        config = artifacts.read_json(refit / "config.json")
        assert config["baseline"] == artifacts.read_json(chosen / "config.json")["baseline"]  # chosen settings
        if model == "mf-bpr":
            assert config["train"]["epochs"] == max(artifacts.read_json(chosen / "train.json")["best_epoch"], 1)
            assert artifacts.read_json(refit / "train.json")["epochs_run"] == config["train"]["epochs"]
    agg = aggregate(collect(tmp_path / "runs", "lightgcn-gowalla"))
    assert {r["model"] for r in agg} == {"gf-cf", "mf-bpr", "gf-cf (refit)", "mf-bpr (refit)"}
    refit_ndcg = next(r["test_ndcg@20"][0] for r in agg if r["model"] == "gf-cf (refit)")
    assert f"- gf-cf (refit) NDCG@20 {refit_ndcg:.4f} against published gf-cf 0.1518" in "\n".join(
        table(agg, "lightgcn-gowalla")
    )
    assert not run_benchmark(bench).done  # all current: nothing redone
    refit, cfg = (
        run_dir(bench, "gowalla", "mf-bpr", 2020).with_name("seed2020.refit"),
        refit_config(run_dir(bench, "gowalla", "mf-bpr", 2020)),
    )
    assert _refit_is_current(refit, replace(cfg, train=replace(cfg.train, patience=1)))  # no part without validation
    assert not _refit_is_current(refit, replace(cfg, train=replace(cfg.train, lr=0.01)))  # other settings
    with pytest.raises(ConfigError, match="lightgcn-gowalla protocol only"):
        BenchmarkConfig(refit=True)


def test_benchmark_chooses_lightgode_t_on_validation_without_retraining(gowalla_like, tmp_path):
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=("gowalla",),
        models=("lightgode",),
        seeds=(2020,),
        protocol="lightgcn-gowalla",
        data_dir=str(gowalla_like),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
        refit=True,
    )
    first = run_benchmark(bench)
    assert [p.name for p in first.done] == ["seed2020", "seed2020.tuned", "seed2020.refit", "seed2020.refit.tuned"]
    own = run_dir(bench, "gowalla", "lightgode", 2020)
    tuned, refit, refit_tuned = (own.with_name(own.name + s) for s in (".tuned", ".refit", ".refit.tuned"))
    search = json.loads((tuned / "tune.json").read_text())
    t = artifacts.read_json(tuned / "config.json")["ode"]["t"]
    assert t == search["t"] and len(search["points"]) >= 9
    # the chosen T is the best validation point of the search, and the run's metrics are at that T
    assert max(p["metrics"]["ndcg@20"] for p in search["points"]) == search["value"]
    run = artifacts.load_run(tuned)
    assert run.metrics["valid"]["ndcg@20"] == pytest.approx(search["value"], rel=1e-6)
    assert evaluate_model(load_model(run), run.split)["test"] == pytest.approx(run.metrics["test"], abs=1e-6)
    # E0 is the source's: only the propagation changed
    src = artifacts.load_run(own)
    assert torch.equal(run.user_embedding, src.user_embedding) and src.config["ode"]["t"] == 3.0
    # the refit is propagated with the T chosen on the 90% run (it has no validation of its own)
    assert artifacts.read_json(refit_tuned / "config.json")["ode"]["t"] == t
    assert not (refit_tuned / "tune.json").exists() and "valid" not in artifacts.read_json(refit_tuned / "metrics.json")
    info = artifacts.read_json(tuned / "train.json")
    assert info["seconds"]["fit"] == pytest.approx(
        artifacts.read_json(own / "train.json")["seconds"]["fit"] + info["seconds"]["post_training"]
    )
    rows = collect(tmp_path / "runs", "lightgcn-gowalla")
    assert {r["model"] for r in rows} == {
        "lightgode",
        "lightgode (T on validation)",
        "lightgode (refit)",
        "lightgode (refit, T on validation)",
    }
    assert f"T {t:.3g}" in next(r["settings"] for r in rows if r["model"] == "lightgode (T on validation)")
    text = "\n".join(table(aggregate(rows), "lightgcn-gowalla"))
    assert "- lightgode (refit, T on validation) NDCG@20 " in text
    assert not run_benchmark(bench).done  # all current
    # a source redone to the same results leaves its derived run current; one whose results changed does not
    (refit / artifacts.MARKER).unlink()
    assert [p.name for p in run_benchmark(bench).done] == ["seed2020.refit"]
    info = artifacts.read_json(refit_tuned / "train.json")
    info["derived_from"]["digest"] = "0" * len(info["derived_from"]["digest"])  # made from other results
    write_json(refit_tuned / "train.json", info)
    assert artifacts.check_complete(refit_tuned)
    assert [p.name for p in run_benchmark(bench).done] == ["seed2020.refit.tuned"]


def test_bpr_embeddings_follow_init_std_or_xavier():
    gen = torch.Generator().manual_seed(0)
    ref = MFEmbeddings(3000, 1000, 64, generator=gen, init_std=0.1)
    assert float(ref.user.detach().std()) == pytest.approx(0.1, rel=0.02)
    xavier = MFEmbeddings(3000, 1000, 64, generator=gen)
    assert float(xavier.user.detach().std()) == pytest.approx((2.0 / (3000 + 64)) ** 0.5, rel=0.02)
    with pytest.raises(ConfigError, match="init_std"):
        BaselineConfig(init_std=-1.0)


def test_report_flags_a_refit_made_from_a_superseded_grid_point():
    def row(model, settings):
        stat = (0.1, 0.0)
        return {
            "dataset": "gowalla",
            "model": model,
            "seeds": 1,
            "test_recall@20": stat,
            "test_ndcg@20": stat,
            "best_epoch": stat,
            "epochs_run": stat,
            "seconds_per_epoch": stat,
            "fit_seconds": stat,
            "inference_seconds": stat,
            "peak_rss_mb": stat,
            "capped": False,
            "settings": settings,
        }

    current = table([row("lightgode", "gamma 5.0"), row("lightgode (refit)", "gamma 5.0")], "lightgcn-gowalla")
    stale = table([row("lightgode", "gamma 5.0"), row("lightgode (refit)", "gamma 10.0")], "lightgcn-gowalla")
    assert not any("stale" in line for line in current)
    assert sum("stale" in line for line in stale) == 1


def test_runs_in_progress_name_lightgodes_validation_of_the_same_seed_chosen_on_validation():
    from lightgode.bench.report import running

    def done(model, seed, valid, variant=""):
        return {"dataset": "gowalla", "model": model, "seed": seed, "variant": variant, "valid_ndcg@20": valid}

    def pending(model, seed):
        return {
            "dataset": "gowalla",
            "model": model,
            "seed": seed,
            "epoch": 7,
            "best_epoch": 6,
            "best_valid_ndcg@20": 0.05,
            "seconds_per_epoch": 1.0,
        }

    rows = [
        done("lightgode", 2020, 0.11),
        done("lightgode", 2020, 0.12, "gamma5"),
        done("lightgode", 2021, 0.13),
        done("gf-cf", 2022, 0.14),
    ]
    lines = [
        line
        for line in running(
            [pending("lightgcn", "2020"), pending("lightgcn", "2022"), pending("lightgode", "2021-gamma5")], rows
        )
        if line.startswith("- ")
    ]
    assert lines[0].endswith("at epoch 6 (LightGODE, same seed: 0.1200)")  # the better grid point
    assert lines[1].endswith("at epoch 6")  # no LightGODE run of seed 2022; gf-cf's is not named
    assert lines[2].endswith("at epoch 6")  # a LightGODE run is not compared with itself
    assert running([], rows) == []


def test_a_run_that_spent_its_epoch_budget_without_stopping_early_counts_as_capped():
    from lightgode.bench.collect import budget_spent

    cfg = {"train": {"epochs": 300}}
    assert budget_spent({"epochs_run": 300, "stopped_early": False}, cfg, validated=True)
    assert not budget_spent({"epochs_run": 300, "stopped_early": True}, cfg, validated=True)  # stopped at the end
    assert not budget_spent({"epochs_run": 120, "stopped_early": False}, cfg, validated=True)  # interrupted early
    assert not budget_spent({"epochs_run": 300, "stopped_early": False}, cfg, validated=False)  # a refit
    assert not budget_spent({"epochs_run": 0}, {"train": {}}, validated=True)  # a filter: no epochs
    assert not budget_spent({"epochs_run": 300}, cfg, validated=True)  # written before the flag existed


def test_conv_variants_script_reproduces_the_runs_mf_and_its_conv_layers(beauty_slice, tmp_path):
    """benchmarks/studies/conv_variants.py: the 'no convolution' row is the MF-BPR run's own validation and test NDCG@20,
    and every form of convolution gets a row."""
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr",),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
    )
    run_benchmark(bench)
    runs = tmp_path / "runs" / "paper" / "beauty_slice"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "studies" / "conv_variants.py"
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(runs),
            "--layers",
            "2",
            "--lightgcn-ndcg",
            "0.05",
            "--docs-dir",
            str(tmp_path / "docs"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    rows = {
        r.split(" | ")[0][2:]: r.split(" | ")
        for r in (tmp_path / "docs" / "analysis_conv_variants_beauty_slice.md").read_text().splitlines()
        if r.startswith("| ") and r[2] != "p"
    }
    metrics = json.loads((runs / "mf-bpr" / "seed2020" / "metrics.json").read_text())
    assert float(rows["MF (BPR), no convolution"][2]) == pytest.approx(metrics["test"]["ndcg@20"], abs=6e-5)
    assert float(rows["MF (BPR), no convolution"][1]) == pytest.approx(metrics["valid"]["ndcg@20"], abs=6e-5)
    assert rows["MF (BPR), no convolution"][3] == f"{100 * metrics['test']['ndcg@20'] / 0.05:.1f}% |"
    assert len(rows) == 1 + 3 * 2 + 4  # L = 1, 2 in three forms, four Euler steps


def test_recorded_rows_fill_in_only_for_runs_not_on_disk():
    from lightgode.bench.ledger import with_recorded
    from lightgode.bench.report import recorded_note

    def row(protocol, model, seed, ndcg, variant=""):
        return {
            "protocol": protocol,
            "dataset": "d",
            "model": model,
            "seed": seed,
            "variant": variant,
            "test_ndcg@20": ndcg,
        }

    disk = [row("paper", "pop", 2020, 0.1)]
    recorded = [
        row("paper", "pop", 2020, 0.9),
        row("paper", "pop", 2021, 0.2),
        row("paper", "pop", 2020, 0.3, "g5"),
        row("lightgcn-gowalla", "pop", 2021, 0.4),
    ]
    rows = with_recorded(disk, recorded, "paper")
    assert [(r["seed"], r["variant"], r["test_ndcg@20"], r.get("recorded", False)) for r in rows] == [
        (2020, "", 0.1, False),
        (2021, "", 0.2, True),
        (2020, "g5", 0.3, True),
    ]  # the run on disk wins
    note = recorded_note(rows)[1]
    assert note.startswith("2 of the 3 runs behind this table are not on this disk")
    assert note.endswith("leaves the rows out); the runs on disk: d / pop (1).")  # the smaller group is the one named
    assert recorded_note(disk) == []


def test_gain_anatomy_script_splits_the_ode_into_direction_and_length(beauty_slice, tmp_path):
    """benchmarks/studies/gain_anatomy.py: the E(T) row is the LightGODE run's own validation and test NDCG@20, the E(0) row
    the exponent-0 row of the degree sweep, and the parts are what their names say."""
    torch.set_num_threads(1)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "studies" / "gain_anatomy.py"
    sys.path.insert(0, str(script.parent))
    try:
        import gain_anatomy as ga
    finally:
        sys.path.remove(str(script.parent))
    E0 = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    ET = torch.tensor([[0.0, 10.0], [2.0, 2.0], [0.0, 1.0]])
    p = ga.parts(E0, ET, n_users=1)
    assert torch.allclose(p["direction of E(0), length of E(T)"][0], torch.tensor([6.0, 8.0]))
    assert torch.allclose(p["direction of E(T), length of E(0)"][1], torch.tensor([1.0, 1.0]) / 2**0.5)
    assert torch.equal(p["E(T) for items, E(0) for users"], torch.cat([E0[:1], ET[1:]]))
    scaled = ga.degree_scaled(E0, 1, torch.tensor([3.0, 0.0]), 0.5)
    assert torch.allclose(scaled, torch.tensor([[3.0, 4.0], [2.0, 0.0], [0.0, 2.0]]))

    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("lightgode",),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
        tune_t=False,
    )
    run_benchmark(bench)
    run = tmp_path / "runs" / "paper" / "beauty_slice" / "lightgode" / "seed2020"
    subprocess.run(
        [sys.executable, str(script), str(run), "--exponents", "0,0.3", "--docs-dir", str(tmp_path / "d")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    lines = (tmp_path / "d" / "analysis_gain_beauty_slice.md").read_text().splitlines()
    rows = {r.split(" | ")[0][2:]: r.split(" | ") for r in lines if r.startswith("| ") and r[2] not in "sa"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert float(rows["E(T): LightGODE"][1]) == pytest.approx(metrics["valid"]["ndcg@20"], abs=6e-5)
    assert float(rows["E(T): LightGODE"][2]) == pytest.approx(metrics["test"]["ndcg@20"], abs=6e-5)
    sweep0 = [c.strip(" |") for c in rows["0"][1:]]
    assert sweep0[:2] == rows["E(0): DirectAU, no graph at test"][1:3]
    assert sweep0[2:] == rows["E(T): LightGODE"][1:3]
    assert len(rows) == 8 + 2
    assert (tmp_path / "d" / "analysis_gain_beauty_slice.png").stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, str(script), str(run), str(tmp_path / "missing")], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing" in bad.stderr


def test_learning_curves_script_reads_complete_and_running_runs(beauty_slice, tmp_path):
    """benchmarks/studies/learning_curves.py: a complete run's curve is its history.csv, a run still training is read
    from its checkpoint, and the race table says who reached whose best validation and when."""
    torch.set_num_threads(1)
    bench = BenchmarkConfig(
        datasets=(str(beauty_slice),),
        models=("mf-bpr",),
        seeds=(2020,),
        out_dir=tmp_path / "runs",
        quick=True,
        isolate=False,
    )
    run_benchmark(bench)
    done = run_dir(bench, str(beauty_slice), "mf-bpr", 2020)
    running = run_dir(bench, str(beauty_slice), "directau", 2020)
    with pytest.raises(KeyboardInterrupt):  # interrupted as epoch 2 ends: its checkpoint holds epoch 1
        train_run(run_config(bench, str(beauty_slice), "directau", 2020), running, on_epoch=stop_at(2))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "studies" / "learning_curves.py"
    subprocess.run(
        [sys.executable, str(script), str(done), str(running), "--name", "slice", "--docs-dir", str(tmp_path / "d")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    lines = (tmp_path / "d" / "learning_curves_slice.md").read_text().splitlines()
    table = [r.split(" | ") for r in lines if r.startswith("| mf-bpr") or r.startswith("| directau")]
    history = [float(r["valid_ndcg@20"]) for r in csv.DictReader(open(done / "history.csv"))]
    from lightgode.bench.collect import budget_spent

    spent = budget_spent(artifacts.read_json(done / "train.json"), artifacts.read_json(done / "config.json"), True)
    assert table[0][1:3] == ["complete, capped (epoch budget spent)" if spent else "complete", str(len(history))]
    assert float(table[0][3]) == pytest.approx(max(history), abs=6e-5)
    assert table[0][4] == str(1 + int(np.argmax(history)))
    assert table[1][1:3] == ["in progress, epoch 1", "1"]
    assert len(table) == 2 + 2  # two runs, then one race row each way
    race = dict((r[0][2:], r[4]) for r in table[2:])  # the run whose best is the mark -> how the other did
    assert all(v.startswith("epoch ") or v.startswith("not yet") for v in [race["mf-bpr / seed2020"]])
    assert all(v.startswith("epoch ") or v.startswith("never") for v in [race["directau / seed2020"]])
    assert (tmp_path / "d" / "learning_curves_slice.png").stat().st_size > 0
    bad = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "missing"), "--name", "x"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing" in bad.stderr


def test_rows_derived_from_a_grid_point_their_source_did_not_choose_are_flagged():
    from lightgode.bench.collect import from_other_point

    def row(model, seed, variant, valid, settings="-"):
        return {
            "dataset": "d",
            "model": model,
            "seed": seed,
            "variant": variant,
            "valid_ndcg@20": valid,
            "settings": settings,
        }

    bpr = "lr 0.001, batch 2048, reg 0.0001, pairs sampling"
    ode = "lr 0.001, batch 256, gamma 5.0, wd 0.0, T 3"
    rows = [
        row("lightgode", 2020, "", 0.10, ode.replace("5.0", "10.0")),
        row("lightgode", 2020, "gamma5", 0.12, ode),
        row("lightgode (T on validation)", 2020, "", 0.13, ode.replace("T 3", "T 3.5")),
        row("mf-bpr", 2020, "", 0.05, bpr),
        row("mf-bpr", 2020, "lr0.002", 0.04, bpr.replace("0.001", "0.002")),
        row("mf-conv", 2020, "", 0.06, bpr + ", L 2"),
    ]
    assert from_other_point(select_variants(rows)) == set()
    rows[2]["settings"] = rows[0]["settings"].replace("T 3", "T 3.5")  # the copy of the point not chosen
    rows[5]["settings"] = bpr.replace("0.001", "0.002") + ", L 2"
    assert from_other_point(select_variants(rows)) == {("d", "lightgode (T on validation)"), ("d", "mf-conv")}
    agg = {
        r["model"]: r
        for r in aggregate(
            [
                r
                | {
                    k: 0.1
                    for k in (
                        "test_recall@20",
                        "test_ndcg@20",
                        "best_epoch",
                        "epochs_run",
                        "seconds_per_epoch",
                        "fit_seconds",
                        "inference_seconds",
                        "peak_rss_mb",
                    )
                }
                | {"capped": False}
                for r in rows
            ]
        )
    }
    assert agg["mf-conv"]["stale"] and not agg["mf-bpr"]["stale"]
    assert sum("stale: made from a grid point" in line for line in table(list(agg.values()), "paper")) == 2
