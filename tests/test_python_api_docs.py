"""docs/python-api.md runs as written: every ```python block, in order, in one namespace, in an empty folder.

And what one command writes, the next reads: ``lightgode export --format npy`` into ``lightgode propagate`` and
into a top-k of one's own with numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lightgode.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_the_page_has_its_examples() -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 8
    code = "\n".join(blocks)
    for call in (
        "train_run(",
        "Recommender.load(",
        "recommend_for_history(",
        "create_app(",
        '"export"',
        '"propagate"',
        "faiss.",
        "prepare_split(",
        "LightGODE(",
    ):
        assert call in code, f"docs/python-api.md shows no {call}"


def test_python_api_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("faiss")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "python_api_docs"}
    for n, block in enumerate(python_blocks(DOC.read_text()), 1):
        try:
            exec(compile(block, f"docs/python-api.md block {n}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"block {n} of docs/python-api.md failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert "unknown user id 'nobody'" in out
    assert (tmp_path / "runs" / "mine" / "COMPLETE").is_file()
    assert (tmp_path / "runs" / "mine-updated" / "COMPLETE").is_file()
    assert (tmp_path / "runs" / "propagated" / "propagate.json").is_file()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A two-epoch LightGODE run on a small made-up CSV."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(1)
    users = rng.integers(0, 120, size=2400)
    items = (users % 8) * 8 + rng.integers(0, 8, size=2400)
    np.savetxt(root / "data.csv", np.c_[users, items], fmt="user-%d,item-%d", header="user,item", comments="")
    run = root / "run"
    assert main(["train", "--data", str(root / "data.csv"), "--epochs", "2", "--out", str(run)]) == 0
    return run


def test_export_npy_is_read_by_propagate(small_run: Path, tmp_path: Path) -> None:
    """``export --format npy`` (E0) -> ``propagate --user-ids user_ids.npy``: T = 0 gives back the vectors as they
    were, T = 1 gives the run's own E(T) (what ``export`` writes by default)."""
    e0, et = tmp_path / "e0", tmp_path / "et"
    assert main(["export", str(small_run), "--format", "npy", "--which", "e0", "--out", str(e0)]) == 0
    assert main(["export", str(small_run), "--format", "npy", "--out", str(et)]) == 0
    # A shuffled copy: propagate must follow the ids of the .npy, not the split's order.
    rng = np.random.default_rng(0)
    U, user_ids = np.load(e0 / "users.npy"), np.load(e0 / "user_ids.npy")
    perm = rng.permutation(len(U))
    np.save(tmp_path / "users_shuffled.npy", U[perm])
    np.save(tmp_path / "user_ids_shuffled.npy", user_ids[perm])
    for t, out in (("0", tmp_path / "p0"), ("1", tmp_path / "p1")):
        assert (
            main(
                [
                    "propagate",
                    "--split-dir",
                    str(small_run / "split"),
                    "--t",
                    t,
                    "--user-emb",
                    str(tmp_path / "users_shuffled.npy"),
                    "--user-ids",
                    str(tmp_path / "user_ids_shuffled.npy"),
                    "--item-emb",
                    str(e0 / "items.npy"),
                    "--item-ids",
                    str(e0 / "item_ids.npy"),
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    got_ids = (tmp_path / "p0" / "user_ids.txt").read_text().split("\n")[:-1]
    assert got_ids == [str(x) for x in user_ids[perm]]
    np.testing.assert_allclose(np.load(tmp_path / "p0" / "user_embedding.npy"), U[perm], rtol=1e-6)
    # T = 1 (the run's ODE): the run's propagated vectors, row for row by id.
    np.testing.assert_allclose(
        np.load(tmp_path / "p1" / "user_embedding.npy"), np.load(et / "users.npy")[perm], rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        np.load(tmp_path / "p1" / "item_embedding.npy"), np.load(et / "items.npy"), rtol=1e-4, atol=1e-6
    )
    report = json.loads((tmp_path / "p1" / "propagate.json").read_text())
    assert report["isolated"] == {"users": 0, "items": 0}
    assert set(report["metrics"]["after"]) >= {"test", "valid"}


def test_export_npy_gives_the_recommenders_top_k(small_run: Path, tmp_path: Path) -> None:
    """A numpy top-k over the exported E(T) ranks as the Recommender does (seen items not excluded)."""
    from lightgode import Recommender

    out = tmp_path / "export"
    assert main(["export", str(small_run), "--format", "npy", "--out", str(out)]) == 0
    U, user_ids = np.load(out / "users.npy"), np.load(out / "user_ids.npy")
    V, item_ids = np.load(out / "items.npy"), np.load(out / "item_ids.npy")
    assert U.dtype == V.dtype == np.float32 and U.shape[1] == V.shape[1]
    assert user_ids.dtype.kind == item_ids.dtype.kind == "U"
    rec = Recommender.load(small_run)
    assert len(user_ids) == rec.n_users and len(item_ids) == rec.n_items
    for u in user_ids[:20]:
        top = np.argsort(-(V @ U[np.flatnonzero(user_ids == u)[0]]), kind="stable")[:10]
        want = rec.recommend(str(u), k=10, exclude_seen=False)
        assert list(item_ids[top]) == [r.item for r in want]
