from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/datasets is not present")
    return SHARED


def beauty_slice_file(tmp_path_factory, shared_datasets: Path, lines: int) -> Path:
    """A file with the first ``lines`` lines of Amazon-Beauty (a small slice of real data for tests)."""
    text = (shared_datasets / "amazon-beauty" / "Beauty.txt").read_text().splitlines()[:lines]
    path = tmp_path_factory.mktemp("data") / "beauty_slice.txt"
    path.write_text("\n".join(text) + "\n")
    return path
