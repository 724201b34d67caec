"""Where training runs (``--device``): names checked, a missing GPU refused in one line, the CPU paths the GPU
takes (autograd LightGCN step, device-agnostic evaluation) equal to the CPU's own, and the benchmark's handling of
runs made on another device. The tests marked ``cuda`` run only where torch sees a GPU (never in CI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lightgode.bench.collect import aggregate
from lightgode.bench.ledger import changed_settings, read_recorded
from lightgode.bench.report import claims, table
from lightgode.bench.settings import BenchmarkConfig, run_config
from lightgode.cli import main
from lightgode.core.config import TrainConfig
from lightgode.core.graph import normalized_adjacency, to_torch
from lightgode.core.train import resolve_device
from lightgode.data.interactions import Interactions
from lightgode.errors import ConfigError
from lightgode.models.bpr import NegativeSampler
from lightgode.models.lightgcn import LightGCNModule

from conftest import beauty_slice_file

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


@pytest.fixture(scope="module")
def slice_file(tmp_path_factory) -> Path:
    return beauty_slice_file(tmp_path_factory, 1500)


def test_device_names_are_checked():
    for name in ("cpu", "cuda", "cuda:1", "auto"):
        assert TrainConfig(device=name).device == name
    for bad in ("gpu", "cuda:x", "", "meta", "mps"):
        with pytest.raises(ConfigError, match="unknown device"):
            TrainConfig(device=bad)
    with pytest.raises(ConfigError, match="unknown device"):
        BenchmarkConfig(device="tpu0")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@no_cuda
def test_missing_gpu_is_a_one_line_error_before_anything_is_written(tmp_path, slice_file, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(slice_file), "--device", "cuda", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sees no CUDA GPU" in err[0] and "Traceback" not in err[0]
    assert not list(tmp_path.iterdir())  # no run directory, no checkpoint folder
    assert (
        main(
            [
                "benchmark",
                "--datasets",
                "amazon-beauty",
                "--models",
                "pop",
                "--seeds",
                "1",
                "--device",
                "cuda",
                "--out-dir",
                str(tmp_path / "b"),
                "--docs-dir",
                str(tmp_path / "d"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "b").exists() and not (tmp_path / "d").exists()


def test_training_free_models_compute_on_the_cpu_whatever_the_device(tmp_path, slice_file):
    out = tmp_path / "pop"
    assert (
        main(["train", "--data", str(slice_file), "--model", "pop", "--device", "cuda", "--out", str(out), "--quiet"])
        == 0
    )
    assert json.loads((out / "train.json").read_text())["device"] == "cpu"


@no_cuda
def test_a_run_started_on_a_gpu_resumes_on_the_cpu_when_told(tmp_path, slice_file, capsys):
    """A checkpoint whose settings say cuda (a run started on a GPU machine): --resume alone needs the GPU,
    --resume with --device cpu goes on here, and the benchmark goes on on its own device."""
    import csv
    from dataclasses import replace

    from lightgode.atomic import write_json
    from lightgode.bench.execute import _execute_unlocked
    from lightgode.core.checkpoint import Checkpoint
    from lightgode.core.config import RunConfig
    from lightgode.runs.workflow import checkpoint_dir, train_run

    from conftest import stop_at

    cfg = RunConfig().override(
        {
            "data": {"data": str(slice_file)},
            "model": "mf-bpr",
            "threads": 1,
            "train": {"epochs": 4, "patience": 4, "batch_size": 512},
        }
    )
    first_epoch = {}
    for name in ("cli", "bench"):
        out = tmp_path / name
        with pytest.raises(KeyboardInterrupt):
            train_run(cfg, out, on_epoch=stop_at(2))
        made = json.loads((checkpoint_dir(out) / "config.json").read_text())
        made["train"]["device"] = "cuda"
        write_json(checkpoint_dir(out) / "config.json", made)
        first_epoch[name] = Checkpoint(checkpoint_dir(out) / "state.safetensors").metadata()["history"][0]

    def resumed(out: Path) -> bool:  # epoch 1 as the checkpoint had it (a fresh start would time it anew)
        row = next(csv.DictReader(open(out / "history.csv")))
        return float(row["train_seconds"]) == pytest.approx(first_epoch[out.name]["train_seconds"], rel=1e-9)

    out = tmp_path / "cli"
    assert main(["train", "--resume", str(out), "--quiet"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--device", "cpu", "--quiet"]) == 0
    info = json.loads((out / "train.json").read_text())
    assert info["device"] == "cpu" and info["epochs_run"] == 4 and resumed(out)
    _execute_unlocked(
        {"config": replace(cfg, train=replace(cfg.train, device="cpu")).to_dict(), "out": str(tmp_path / "bench")}
    )
    info = json.loads((tmp_path / "bench" / "train.json").read_text())
    assert info["device"] == "cpu" and info["epochs_run"] == 4 and resumed(tmp_path / "bench")


def test_auto_device_trains_and_records_where(tmp_path, slice_file):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(slice_file),
                "--model",
                "lightgcn",
                "--device",
                "auto",
                "--epochs",
                "2",
                "--batch-size",
                "512",
                "--threads",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    info = json.loads((out / "train.json").read_text())
    assert info["device"].split(":")[0] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert json.loads((out / "config.json").read_text())["train"]["device"] == "auto"


@pytest.mark.parametrize("layers", [1, 3])
def test_lightgcn_step_without_scipy_gives_the_scipy_step(layers):
    """On a GPU the step is autograd over full products (no scipy); on the CPU both paths must agree."""
    rng = np.random.default_rng(4)
    users, items = rng.integers(0, 11, 60), rng.integers(0, 13, 60)
    train = Interactions(
        np.array([f"u{i}" for i in range(11)]),
        np.array([f"i{i}" for i in range(13)]),
        users.astype(np.int32),
        items.astype(np.int32),
    )
    A = to_torch(normalized_adjacency(11, 13, users, items))
    out = []
    for scipy_path in (True, False):
        m = LightGCNModule(
            11, 13, 8, 1e-3, NegativeSampler(train), A, layers, generator=torch.Generator().manual_seed(2)
        )
        if not scipy_path:
            m._A_sp = None  # what a module on a GPU has
        u, i = torch.from_numpy(users[:20]).long(), torch.from_numpy(items[:20]).long()
        loss = m.compute_grads(u, i)
        out.append((float(loss), m.user.grad.clone(), m.item.grad.clone(), m.generator.get_state()))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-5)
    assert torch.allclose(out[0][1], out[1][1], atol=1e-6) and torch.allclose(out[0][2], out[1][2], atol=1e-6)
    assert torch.equal(out[0][3], out[1][3])  # the same negatives drawn: the same random stream afterwards


def test_benchmark_device_moves_trained_models_only_and_never_makes_a_run_stale():
    cpu, gpu = BenchmarkConfig(), BenchmarkConfig(device="cuda")
    for model in ("lightgcn", "lightgode", "mf-bpr"):
        made_on_gpu = run_config(gpu, "amazon-beauty", model, 2020)
        assert made_on_gpu.train.device == "cuda"
        assert changed_settings(made_on_gpu.to_dict(), run_config(cpu, "amazon-beauty", model, 2020)) is None
        assert changed_settings(run_config(cpu, "amazon-beauty", model, 2020).to_dict(), made_on_gpu) is None
    for model in ("pop", "gf-cf", "bspm"):
        assert run_config(gpu, "amazon-beauty", model, 2020).train.device == "cpu"


def _row(model: str, seed: int, ndcg: float, seconds: float, device: str = "cpu") -> dict:
    return {
        "protocol": "paper",
        "dataset": "gowalla",
        "model": model,
        "seed": seed,
        "variant": "",
        "test_recall@20": 2 * ndcg,
        "test_ndcg@20": ndcg,
        "valid_ndcg@20": ndcg,
        "best_epoch": 10,
        "epochs_run": 20,
        "seconds_per_epoch": seconds / 20,
        "fit_seconds": seconds,
        "inference_seconds": 1.0,
        "peak_rss_mb": 100.0,
        "capped": False,
        "settings": "lr 0.001",
        "device": device,
    }


def test_report_marks_gpu_rows_and_compares_no_times_across_devices():
    rows = [_row("lightgode", s, 0.12, 1000.0) for s in (2020, 2021)]
    rows += [_row("lightgcn", 2020, 0.11, 30000.0), _row("lightgcn", 2021, 0.11, 400.0, "cuda:0 (NVIDIA H200)")]
    agg = aggregate(rows)
    text = "\n".join(table(agg, "paper"))
    assert "(GPU: 1 of 2 seeds; times are a GPU's)" in text
    lines = [line for line in claims(agg) if line.startswith("- gowalla: LightGODE test")]
    assert lines and "training times not compared" in lines[0] and "ratio" not in lines[0]
    same = aggregate([r | {"device": "cpu"} for r in rows])
    assert "GPU" not in "\n".join(table(same, "paper"))
    assert "ratio" in next(line for line in claims(same) if line.startswith("- gowalla: LightGODE test"))


def test_a_csv_written_before_the_device_column_reads_as_cpu(tmp_path):
    import csv

    with open(Path(__file__).resolve().parents[1] / "docs" / "results" / "benchmark.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    old = tmp_path / "benchmark.csv"
    columns = [c for c in rows[0] if c != "device"]
    with open(old, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows({c: r[c] for c in columns} for r in rows)
    recorded = read_recorded(old)
    assert len(recorded) == len({(r["protocol"], r["dataset"], r["model"], r["seed"], r["variant"]) for r in rows})
    assert {r["device"] for r in recorded} == {"cpu"}


# --- on a GPU only ------------------------------------------------------------------------------------------------


@cuda
@pytest.mark.parametrize("model", ["lightgcn", "mf-bpr", "lightgode"])
def test_gpu_training_matches_cpu_training(tmp_path, slice_file, model):
    """The same batches and negatives on both devices: the metrics agree up to float rounding's drift."""
    metrics = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(slice_file),
                    "--model",
                    model,
                    "--device",
                    device,
                    "--epochs",
                    "5",
                    "--patience",
                    "5",
                    "--lr",
                    "0.005",
                    "--threads",
                    "1",
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        metrics[device] = json.loads((out / "metrics.json").read_text())["test"]
        info = json.loads((out / "train.json").read_text())
        assert info["device"].startswith(device)
    assert metrics["cuda"]["ndcg@20"] == pytest.approx(metrics["cpu"]["ndcg@20"], abs=0.01)
    assert metrics["cuda"]["ndcg@20"] > 0


@cuda
def test_gpu_training_resumes_from_its_checkpoint(tmp_path):
    """A LightGCN run on the GPU interrupted after epoch 2 and resumed ends where an unbroken one does (to
    atomics' rounding: CUDA's index_add_ sums in no fixed order)."""
    from conftest import fit_whole_and_resumed

    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 40, 400), rng.integers(0, 30, 400)
    train = Interactions(
        np.array([f"u{i}" for i in range(40)]),
        np.array([f"i{i}" for i in range(30)]),
        users.astype(np.int32),
        items.astype(np.int32),
    )
    A = to_torch(normalized_adjacency(40, 30, users, items)).to("cuda")

    def make():
        return LightGCNModule(
            40, 30, 8, 1e-4, NegativeSampler(train), A, 3, generator=torch.Generator().manual_seed(6)
        ).to("cuda")

    config = TrainConfig(epochs=4, batch_size=64, lr=0.01, device="cuda")
    whole, resumed, result = fit_whole_and_resumed(make, users, items, config, 7, tmp_path)
    assert result.epochs_run == 4 and resumed.user.device.type == "cuda"
    assert torch.allclose(whole.user, resumed.user, atol=1e-5) and torch.allclose(whole.item, resumed.item, atol=1e-5)


def test_a_refit_trains_where_the_benchmark_trains_and_stays_current_across_devices(tmp_path):
    from dataclasses import replace

    from lightgode.atomic import write_json
    from lightgode.bench.runner import _refit_is_current, refit_config

    chosen = tmp_path / "seed2020"
    chosen.mkdir()
    made = run_config(BenchmarkConfig(device="cuda"), "gowalla", "lightgcn", 2020)
    write_json(chosen / "config.json", made.to_dict())
    write_json(chosen / "train.json", {"best_epoch": 7})
    cfg = refit_config(chosen)
    assert cfg.train.epochs == 7 and cfg.train.device == "cuda"  # as stored; _refit then sets the bench's device
    out = tmp_path / "seed2020.refit"
    out.mkdir()
    for name in ("metrics.json", "train.json"):
        write_json(out / name, {})
    write_json(out / "config.json", cfg.to_dict())
    (out / "split").mkdir()
    (out / "weights.safetensors").write_bytes(b"")
    files = {f: (out / f).stat().st_size for f in ("config.json", "metrics.json", "train.json", "weights.safetensors")}
    write_json(out / "COMPLETE", {"files": files})
    on_cpu = replace(cfg, train=replace(cfg.train, device="cpu"))
    assert _refit_is_current(out, cfg) and _refit_is_current(out, on_cpu)
