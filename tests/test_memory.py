"""Memory of evaluation and propagation is bounded by the batch (and E), never by users x items: checked on data
of Gowalla's size (a synthetic LightGCN-format pair of its shape) and, where present, on Gowalla itself."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import skip_for_missing_data, write_lightgcn_pair

SCRIPT = textwrap.dedent("""
    import sys, torch
    from lightgode.data.datasets import load_dataset
    from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking, memory_bound_bytes
    from lightgode.core.graph import normalized_adjacency, to_torch
    from lightgode.core.ode import ODEConfig, propagate

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    def peak_extra(fn):
        base = status("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak (VmHWM) to the current resident size
        out = fn()
        return status("VmHWM") - base, out

    torch.set_num_threads(1)
    train, test = load_dataset("gowalla", data_dir=sys.argv[1], given_split=True)
    nu, ni = train.n_users, train.n_items
    g = torch.Generator().manual_seed(0)
    E0 = torch.randn(nu + ni, 64, generator=g) * 0.1
    A = to_torch(normalized_adjacency(nu, ni, train.users, train.items))
    tr, te = train.to_csr(), test.to_csr()
    propagate(A, E0[:], ODEConfig(t=1.0))  # warm up allocator and kernels
    extra_prop, E = peak_extra(lambda: propagate(A, E0, ODEConfig(t=3.0)))
    score = embedding_scorer(E[:nu], E[nu:])
    full_ranking(score, te[:64], tr[:64], EvalConfig(batch_size=8))
    for b in (128, 512):
        extra, _ = peak_extra(lambda: full_ranking(score, te, tr, EvalConfig(batch_size=b)))
        print("eval", b, extra, memory_bound_bytes(b, ni), nu * ni * 4)
    print("prop", extra_prop, 4 * E0.numel() * 4 + 32 * 2**20)
""")


@pytest.fixture(scope="module")
def gowalla_sized(tmp_path_factory) -> Path:
    """A data folder whose 'gowalla' has the shape of LightGCN's Gowalla (29,858 users, 40,981 items, about
    810k train and 217k test pairs), synthetic."""
    root = tmp_path_factory.mktemp("gowalla_sized")
    write_lightgcn_pair(root / "gowalla", n_users=29858, n_items=40981, n_train=810128, n_test=217242, seed=2020)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak reset")
@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_gowalla_memory_within_documented_bounds(source, request, tmp_path):
    data_dir = request.getfixturevalue("gowalla_sized" if source == "synthetic" else "shared_datasets")
    if not (data_dir / "gowalla").is_dir():
        skip_for_missing_data(str(data_dir / "gowalla"))
    script = tmp_path / "mem.py"
    script.write_text(SCRIPT)
    res = subprocess.run([sys.executable, str(script), str(data_dir)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split() for line in res.stdout.splitlines()]
    evals = [
        (int(b), int(x), int(bound), int(dense)) for kind, b, x, bound, dense in (r for r in rows if r[0] == "eval")
    ]
    assert len(evals) == 2
    for b, extra, bound, dense in evals:
        assert extra <= bound, f"batch {b}: {extra / 2**20:.0f} MiB > bound {bound / 2**20:.0f} MiB"
        assert extra < dense / 10  # nowhere near users x items
    # the peak grows with the batch, as the bound says
    assert evals[1][1] > evals[0][1]
    ((_, extra_prop, bound_prop),) = [(r[0], int(r[1]), int(r[2])) for r in rows if r[0] == "prop"]
    assert extra_prop <= bound_prop
