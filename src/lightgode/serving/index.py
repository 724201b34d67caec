"""Maximum-inner-product search over item vectors with faiss: exact flat (default), HNSW or IVF.

Scores are inner products, as everywhere in lightgode: faiss ``IndexFlatIP``, ``IndexHNSWFlat`` and
``IndexIVFFlat`` all take ``METRIC_INNER_PRODUCT``. Excluded items (a user's seen items) are removed by asking
the index for more candidates than ``k`` and filtering, so the approximate kinds return at most ``k`` items.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from lightgode.errors import ConfigError

INDEX_KINDS = ("flat", "hnsw", "ivf")


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    kind: str = "flat"  # flat (exact), hnsw or ivf
    hnsw_m: int = 16  # HNSW: neighbours per node
    ef_construction: int = 100  # HNSW: candidate list size while building
    ef_search: int = 256  # HNSW: candidate list size while searching (recall@20 >= 0.95 on trained Beauty and Gowalla)
    nlist: int = 0  # IVF: number of cells; 0 means about 4 sqrt(n_items)
    nprobe: int = 64  # IVF: cells visited per query
    seed: int = 0  # IVF: k-means seed

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index kind {self.kind!r}; choose one of {', '.join(INDEX_KINDS)}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)}")
        if int(self.nlist) != self.nlist or self.nlist < 0:
            raise ConfigError(f"nlist must be an integer >= 0, got {self.nlist}")


class ItemIndex:
    """Inner-product top-k search over fixed item vectors.

    Parameters
    ----------
    vectors : float array (n_items, d)
    config : IndexConfig
    """

    def __init__(self, vectors: np.ndarray, config: IndexConfig = IndexConfig()) -> None:
        from lightgode.errors import require

        require("faiss", "serve", "an approximate item index (faiss)")
        import faiss

        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if x.ndim != 2 or len(x) == 0:
            raise ConfigError(f"an index needs a non-empty (n_items, d) matrix, got shape {x.shape}")
        self.config = config
        self.n_items, d = x.shape
        if config.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif config.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = config.ef_construction
            index.hnsw.efSearch = config.ef_search
        else:
            nlist = config.nlist or max(1, min(self.n_items // 39, int(4 * np.sqrt(self.n_items))))
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = config.seed
            index.train(x)
            index.nprobe = min(config.nprobe, nlist)
            self._quantizer = quantizer  # faiss keeps a raw pointer; keep the Python object alive
        index.add(x)
        self._index = index
        self.nlist = int(index.nlist) if config.kind == "ivf" else 0  # IVF cells (0 for the other kinds)

    def set_search(self, *, ef_search: int | None = None, nprobe: int | None = None) -> None:
        """Change how widely an approximate index searches, without rebuilding it (``config`` follows).

        Parameters
        ----------
        ef_search : int >= 1, optional
            HNSW: candidate list size while searching.
        nprobe : int >= 1, optional
            IVF: cells visited per query (at most ``nlist``).

        Raises
        ------
        ConfigError
            A value that is not an integer >= 1, or a setting of another kind of index than this one.
        """
        changes = {k: v for k, v in (("ef_search", ef_search), ("nprobe", nprobe)) if v is not None}
        wrong = {"ef_search": "hnsw", "nprobe": "ivf"}
        for name in changes:
            if wrong[name] != self.config.kind:
                raise ConfigError(f"{name} applies only to {wrong[name]} indexes; this one is {self.config.kind}")
        self.config = replace(self.config, **changes)  # checked by IndexConfig
        if ef_search is not None:
            self._index.hnsw.efSearch = self.config.ef_search
        if nprobe is not None:
            self._index.nprobe = min(self.config.nprobe, self.nlist)

    def search(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items by inner product for each query row, skipping each row's excluded items.

        Parameters
        ----------
        queries : float array (b, d)
        k : int >= 1
        exclude : CSR (b, n_items) or None; nonzeros are items to skip for that row

        Returns
        -------
        (indices int64 (b, k), scores float32 (b, k)); missing places hold -1 / -inf.
        """
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = int(min(k, self.n_items))
        extra = int(np.diff(exclude.indptr).max()) if exclude is not None and exclude.shape[0] else 0
        want = min(k + extra, self.n_items)
        scores, idx = self._index.search(q, want)
        if exclude is None or extra == 0:
            return idx[:, :k].astype(np.int64), scores[:, :k]
        out_i = np.full((len(q), k), -1, dtype=np.int64)
        out_s = np.full((len(q), k), -np.inf, dtype=np.float32)
        for r in range(len(q)):
            seen = exclude.indices[exclude.indptr[r] : exclude.indptr[r + 1]]
            keep = (idx[r] >= 0) & ~np.isin(idx[r], seen)
            got_i, got_s = idx[r][keep][:k], scores[r][keep][:k]
            out_i[r, : len(got_i)], out_s[r, : len(got_s)] = got_i, got_s
        return out_i, out_s


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row's exact top-k found in the approximate top-k (-1 entries ignored)."""
    hits = [len(np.intersect1d(a[a >= 0], e[e >= 0])) / max((e >= 0).sum(), 1) for a, e in zip(approx, exact)]
    return float(np.mean(hits)) if hits else float("nan")
