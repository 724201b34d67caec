"""Recommender: a trained run that answers top-K queries with raw ids in and out.

Known users, users the model has never seen (fold-in from their items, ``lightgode.serving.foldin``), similar items,
and new interactions added without retraining. Scores are inner products of the propagated E(T); similar
items use the cosine of the items' E(T). Search is exact unless an approximate ``IndexConfig`` is given.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from lightgode.core.evaluate import embedding_scorer, topk_masked
from lightgode.core.ode import ODEConfig
from lightgode.data.interactions import Interactions, as_ids, show_id
from lightgode.data.split import Split, save_split
from lightgode.errors import ConfigError
from lightgode.runs import store as artifacts
from lightgode.runs.store import load_model
from lightgode.serving.foldin import (
    FoldInConfig,
    PropagatedGraph,
    UpdateStats,
    add_edges,
    adjacency,
    fold_in_one,
    trajectory_integral,
)
from lightgode.serving.index import IndexConfig, ItemIndex


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: its raw id, its 1-based rank in the list and its score (an inner product of E(T)
    rows; for ``similar_items`` a cosine)."""

    item: str
    rank: int
    score: float


class Recommender:
    """Top-K recommendations from a run directory, with raw ids in and out.

    Usually made by :meth:`load` from a run directory. Seen items (the user's training and validation
    interactions) are excluded unless asked otherwise. Scores are inner products of E(T) rows.

    Parameters
    ----------
    user_embeddings, item_embeddings : torch.Tensor, float32, shapes (n_users, d), (n_items, d)
        The scored E(T).
    vocab : Interactions
        The id maps (``user_ids``, ``item_ids``) and the training pairs.
    seen : scipy.sparse.csr_matrix, shape (n_users, n_items)
        Nonzeros are the items excluded for each user.
    graph : PropagatedGraph, optional
        The graph ODE state; needed for fold-in (:meth:`recommend_for_history`, :meth:`embed_history`) and
        :meth:`add_interactions` (LightGODE and DirectAU runs).
    foldin : FoldInConfig
        How new users are placed (their initial value e_u0 and the item degrees).
    index : IndexConfig, optional
        An approximate faiss index (hnsw, ivf) or the exact flat one; None searches exactly with a matrix product.

    Attributes
    ----------
    vocab : Interactions
    seen : scipy.sparse.csr_matrix, shape (n_users, n_items)
    user_embeddings, item_embeddings : torch.Tensor, float32, shapes (n_users, d), (n_items, d)
    split : Split or None
        The run's split (set by :meth:`load`; grows with :meth:`add_interactions`).
    run : Run or None
        The loaded run directory (set by :meth:`load`).
    updates : list of dict
        Statistics of each :meth:`add_interactions` call since loading.
    """

    def __init__(
        self,
        user_embeddings: torch.Tensor,
        item_embeddings: torch.Tensor,
        vocab: Interactions,
        seen: sp.csr_matrix,
        *,
        graph: PropagatedGraph | None = None,
        foldin: FoldInConfig = FoldInConfig(),
        index: IndexConfig | None = None,
    ) -> None:
        self.vocab = vocab  # id maps (user_ids, item_ids)
        self.seen = seen.tocsr()
        self.graph = graph
        self.foldin = foldin
        self.index_config = index
        self.split: Split | None = None  # set by load(); kept for save_run()
        self.run: artifacts.Run | None = None
        self.updates: list[dict] = []  # statistics of each add_interactions call since loading
        self._set_embeddings(user_embeddings, item_embeddings)

    def _set_embeddings(self, user_embeddings: torch.Tensor, item_embeddings: torch.Tensor) -> None:
        self.user_embeddings = user_embeddings.detach().to(torch.float32).contiguous()
        self.item_embeddings = item_embeddings.detach().to(torch.float32).contiguous()
        self._score = embedding_scorer(self.user_embeddings, self.item_embeddings)
        self._unit_items: torch.Tensor | None = None
        self._F_items: torch.Tensor | None = None
        self._index: ItemIndex | None = None
        self._sim_index: ItemIndex | None = None
        self._user_pos = _Positions(self.vocab.user_ids)
        self._item_pos = _Positions(self.vocab.item_ids)

    @classmethod
    def load(
        cls,
        run_dir: str | os.PathLike,
        ode: ODEConfig | None = None,
        *,
        foldin: FoldInConfig = FoldInConfig(),
        index: IndexConfig | None = None,
    ) -> Recommender:
        """Load a complete run directory (weights through safetensors, no pickle) and propagate it.

        Parameters
        ----------
        run_dir : str or path
            A directory written by ``lightgode train`` or :func:`lightgode.train_run`.
        ode : ODEConfig, optional
            Another horizon or solver than the run's (ODE models only; no retraining).
        foldin : FoldInConfig
            How new users are placed.
        index : IndexConfig, optional
            Search with a faiss index instead of the exact matrix product.

        Returns
        -------
        Recommender

        Raises
        ------
        RunDirError
            A missing, incomplete or damaged run directory.
        ConfigError
            A run of a training-free filter (gf-cf, bspm), which has no embeddings to serve.
        """
        run = artifacts.load_run(run_dir)
        model = load_model(run, ode)
        if not hasattr(model, "user_embeddings_"):
            raise ConfigError(
                f"{run.path} is a {type(model).__name__} run, a training-free filter that scores "
                f"users without embeddings: recommendations and serving need an embedding model "
                f"(lightgode, directau, mf-bpr, lightgcn, mf-conv, pop)"
            )
        seen = run.split.train.to_csr() + run.split.valid.to_csr()
        graph = None
        if hasattr(model, "E0_") and hasattr(model, "ode"):
            E = torch.cat([model.user_embeddings_, model.item_embeddings_], dim=0)
            graph = PropagatedGraph.build(run.split.train.to_csr(), model.E0_, model.ode, E)
        rec = cls(
            model.user_embeddings_,
            model.item_embeddings_,
            run.split.train,
            seen,
            graph=graph,
            foldin=foldin,
            index=index,
        )
        rec.split, rec.run = run.split, run
        return rec

    @property
    def n_items(self) -> int:
        """Number of items known to the model."""
        return len(self.vocab.item_ids)

    @property
    def n_users(self) -> int:
        """Number of users known to the model."""
        return len(self.vocab.user_ids)

    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or int(k) != k or k <= 0:
            raise ConfigError(f"k must be an integer > 0, got {k}")
        return int(min(k, self.n_items))

    # ---- known users -------------------------------------------------------------------------------------

    def recommend_indices(self, users: np.ndarray, k: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (item indices, scores) for user indices: the batch path, without raw ids.

        Parameters
        ----------
        users : int array, shape (b,)
            User indices (positions in ``vocab.user_ids``).
        k : int >= 1
            List length (at most ``n_items``).
        exclude_seen : bool
            Leave out each user's training and validation items.

        Returns
        -------
        indices : np.ndarray, int64, shape (b, k)
            Item indices, best first; places with no item left hold -1.
        scores : np.ndarray, float32, shape (b, k)
            Their scores; -inf where the index is -1.

        Raises
        ------
        ConfigError
            ``k`` not an integer >= 1.
        """
        k = self._check_k(k)
        if self.index_config is not None:
            q = self.user_embeddings[torch.from_numpy(np.asarray(users, dtype=np.int64))].numpy()
            return self.item_index().search(q, k, self.seen[users] if exclude_seen else None)
        with torch.no_grad():
            scores, idx = topk_masked(self._score, users, self.seen if exclude_seen else None, k)
        idx = idx.numpy().astype(np.int64)
        scores = scores.numpy()
        idx[~np.isfinite(scores)] = -1
        return idx, scores

    def recommend(self, user_id, k: int = 20, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-k items for one known user.

        Parameters
        ----------
        user_id : str or int
            The user's raw id, as in the data file.
        k : int >= 1
            List length.
        exclude_seen : bool
            Leave out the user's training and validation items.

        Returns
        -------
        list of Recommendation
            At most ``k``, best first.

        Raises
        ------
        UnknownIdError
            A user id the model does not know (use :meth:`recommend_for_history` for a new user).
        ConfigError
            ``k`` not an integer >= 1.
        """
        u = int(self._user_pos.index(user_id, "user"))
        k = self._check_k(k)
        if self.index_config is not None:
            idx, scores = self.recommend_indices(np.array([u]), k, exclude_seen)
            return self._as_recs(idx[0], scores[0])
        seen = self.seen.indices[self.seen.indptr[u] : self.seen.indptr[u + 1]] if exclude_seen else None
        return self._as_recs(*self._top_exact(self.user_embeddings[u], k, seen))

    def recommend_many(
        self, user_ids, k: int = 20, exclude_seen: bool = True, batch_size: int = 1024
    ) -> Iterator[tuple[str, list[Recommendation]]]:
        """Top-k items for many known users, scored in batches.

        Parameters
        ----------
        user_ids : iterable of str or int
            Raw user ids.
        k : int >= 1
        exclude_seen : bool
        batch_size : int
            Users scored at once (memory grows with ``batch_size`` x ``n_items``).

        Yields
        ------
        (str, list of Recommendation)
            Each user's raw id and list, in the order of ``user_ids``.

        Raises
        ------
        UnknownIdError
            An unknown user id (raised before anything is yielded).
        """
        users = self.vocab.user_index(list(user_ids))
        for start in range(0, len(users), batch_size):
            b = users[start : start + batch_size]
            idx, scores = self.recommend_indices(b, k, exclude_seen)
            for row, u in enumerate(b):
                yield str(self.vocab.user_ids[u]), self._as_recs(idx[row], scores[row])

    # ---- new users, similar items ------------------------------------------------------------------------

    def _need_graph(self) -> PropagatedGraph:
        if self.graph is None:
            raise ConfigError("this run's model has no graph ODE state: fold-in and updates need a LightGODE run")
        return self.graph

    def embed_history(self, item_ids: Iterable) -> torch.Tensor:
        """E(T) of a user the model has never seen, folded in from their items (``lightgode.serving.foldin``).

        With the item trajectories frozen, the new user's row of the ODE is solved exactly for the run's solver:
        E_u(T) = (1 + T) e_u0 + sum_i Â_ui F_i, F the integral of the items' E(t) over [0, T].

        Parameters
        ----------
        item_ids : iterable of str or int
            Raw ids of the items the user interacted with (duplicates count once).

        Returns
        -------
        torch.Tensor, float32, shape (d,)
            Comparable with ``item_embeddings`` by inner product.

        Raises
        ------
        UnknownIdError
            An item id the model does not know.
        ConfigError
            An empty history, or a run without graph ODE state (not LightGODE or DirectAU).
        """
        items = self._history_indices(item_ids)
        return self._fold_in(items)

    def _history_indices(self, item_ids: Iterable) -> np.ndarray:
        ids = list(item_ids) if not isinstance(item_ids, (str, bytes)) else [item_ids]
        if not ids:
            raise ConfigError("a history needs at least one item id")
        return np.unique(self._item_pos.indices(ids, "item"))

    def _fold_in(self, items: np.ndarray) -> torch.Tensor:
        g = self._need_graph()
        if self._F_items is None:  # per-graph constants of the fold-in, computed on first use
            A = None if g.ode.t == 0 or (g.ode.solver == "euler" and g.ode.steps == 1) else adjacency(g.R)
            deg_i = g.degrees()[1] + (1.0 if self.foldin.item_degree == "with_user" else 0.0)
            self._F_items = trajectory_integral(A, g.E0, g.ode)[g.n_users :]
            self._foldin_consts = (deg_i, g.median_norms()[0])
        deg_i, u_norm = self._foldin_consts
        return fold_in_one(items, self._F_items, deg_i, g.E0[g.n_users :], self.foldin.init, u_norm, g.ode.t)

    def recommend_for_history(self, item_ids: Iterable, k: int = 20, exclude_seen: bool = True) -> list[Recommendation]:
        """Top-k items for a new user given the raw ids of the items they interacted with (fold-in, no retraining).

        Parameters
        ----------
        item_ids : iterable of str or int
            The user's items (raw ids); see :meth:`embed_history`.
        k : int >= 1
        exclude_seen : bool
            Leave out the history's items.

        Returns
        -------
        list of Recommendation
            At most ``k``, best first.

        Raises
        ------
        UnknownIdError
            An unknown item id.
        ConfigError
            An empty history, ``k`` not an integer >= 1, or a run without graph ODE state.
        """
        items = self._history_indices(item_ids)
        k = self._check_k(k)
        e = self._fold_in(items)
        if self.index_config is not None:
            exclude = sp.csr_matrix((np.ones(len(items)), items, [0, len(items)]), shape=(1, self.n_items))
            idx, scores = self.item_index().search(e.numpy()[None], k, exclude if exclude_seen else None)
            return self._as_recs(idx[0], scores[0])
        return self._as_recs(*self._top_exact(e, k, items if exclude_seen else None))

    def similar_items(self, item_id, k: int = 20) -> list[Recommendation]:
        """The k items whose E(T) has the highest cosine with this item's (the item itself left out).

        Parameters
        ----------
        item_id : str or int
            A raw item id.
        k : int >= 1

        Returns
        -------
        list of Recommendation
            Scores are cosines in [-1, 1], best first.

        Raises
        ------
        UnknownIdError
            An unknown item id.
        ConfigError
            ``k`` not an integer >= 1.
        """
        i = int(self._item_pos.index(item_id, "item"))
        k = self._check_k(k)
        unit = self._unit()
        if self.index_config is not None:
            if self._sim_index is None:
                self._sim_index = ItemIndex(unit.numpy(), self.index_config)
            idx, scores = self._sim_index.search(
                unit[i].numpy()[None], k, sp.csr_matrix(([1.0], [i], [0, 1]), shape=(1, self.n_items))
            )
            return self._as_recs(idx[0], scores[0])
        return self._as_recs(*self._top_exact(unit[i], k, np.array([i]), unit))

    def item_index(self) -> ItemIndex:
        """The inner-product index over items' E(T) (built on first use; exact flat unless ``index`` was given).

        Returns
        -------
        ItemIndex
            ``search(queries (b, d), k, exclude)`` gives (indices (b, k), scores (b, k)).
        """
        if self._index is None:
            self._index = ItemIndex(self.item_embeddings.numpy(), self.index_config or IndexConfig())
        return self._index

    def _unit(self) -> torch.Tensor:
        if self._unit_items is None:
            self._unit_items = torch.nn.functional.normalize(self.item_embeddings, dim=1)
        return self._unit_items

    def _top_exact(
        self, q: torch.Tensor, k: int, exclude: np.ndarray | None, items: torch.Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One query against every item: a matrix-vector product and a partial sort (the serving path)."""
        with torch.no_grad():
            scores = torch.mv(self.item_embeddings if items is None else items, q)
            if exclude is not None and len(exclude):
                scores[torch.from_numpy(np.asarray(exclude, dtype=np.int64))] = -torch.inf
            top, idx = torch.topk(scores, min(k, len(scores)))
        top, idx = top.numpy(), idx.numpy().astype(np.int64)
        keep = np.isfinite(top)
        return idx[keep], top[keep]

    def _as_recs(self, idx: np.ndarray, scores: np.ndarray) -> list[Recommendation]:
        ids = self.vocab.item_ids
        return [Recommendation(str(ids[i]), r + 1, float(s)) for r, (i, s) in enumerate(zip(idx, scores)) if i >= 0]

    # ---- incremental updates -----------------------------------------------------------------------------

    def add_interactions(self, pairs: Iterable[tuple[object, object]]) -> UpdateStats:
        """Add (user_id, item_id) interactions; unknown ids become new users and items.

        Degrees, Â and E(T) are updated without retraining (``foldin.add_edges``): new nodes start from
        ``self.foldin.init`` over their known neighbours' E0; trained E0 rows stay as they are. The new pairs
        count as seen. :meth:`save_run` writes the result as a run directory.

        Parameters
        ----------
        pairs : iterable of (user_id, item_id)
            Raw ids; pairs already in the graph change nothing.

        Returns
        -------
        UpdateStats
            Counts of new users, items and edges, and the rows re-propagated.

        Raises
        ------
        ConfigError
            No pairs, an element that is not a pair, or a run without graph ODE state.
        """
        g = self._need_graph()
        pairs = list(pairs)
        if not pairs or any(len(p) != 2 for p in pairs):
            raise ConfigError("interactions must be a non-empty list of (user_id, item_id) pairs")
        raw_u = as_ids([p[0] for p in pairs])  # objects: a long id does not widen every row
        raw_i = as_ids([p[1] for p in pairs])
        u, new_uids = self._user_pos.extend(raw_u)
        i, new_iids = self._item_pos.extend(raw_i)
        U, I = self.n_users + len(new_uids), self.n_items + len(new_iids)
        old_R = g.R
        g2, stats = add_edges(g, u, i, U, I, init=self.foldin.init)
        fresh = g2.R - _grow(old_R, U, I)  # the edges that were not there before
        fresh.eliminate_zeros()
        fu, fi = fresh.nonzero()
        v = self.vocab
        user_ids = np.concatenate([v.user_ids, new_uids]) if len(new_uids) else v.user_ids
        item_ids = np.concatenate([v.item_ids, new_iids]) if len(new_iids) else v.item_ids
        self.vocab = Interactions(
            user_ids,
            item_ids,
            np.concatenate([v.users, fu.astype(np.int32)]),
            np.concatenate([v.items, fi.astype(np.int32)]),
        )
        if self.split is not None:
            s = self.split
            self.split = Split(
                self.vocab, *(Interactions(user_ids, item_ids, p.users, p.items) for p in (s.valid, s.test))
            )
        self.seen = (_grow(self.seen, U, I) + fresh).tocsr()
        self.seen.data[:] = 1.0
        self.graph = g2
        self._set_embeddings(g2.E[:U], g2.E[U:])
        self.updates.append(asdict(stats))
        return stats

    def save_run(self, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write this (updated) model as a complete run directory, atomically.

        Parameters
        ----------
        out : str or path
            The target. It may be the source run (replaced in place); another existing ``out`` is replaced only
            with ``overwrite``; ``out`` may not hold the source run.
        overwrite : bool

        Returns
        -------
        Path
            ``out``.

        Raises
        ------
        ConfigError
            A Recommender not loaded from a LightGODE (or DirectAU) run directory.
        OutputError
            A target that exists (without ``overwrite``), cannot be written, or is being written by another command.
        """
        if self.run is None or self.split is None or self.graph is None:
            raise ConfigError("only a Recommender loaded from a LightGODE run directory can be saved")
        g = self.graph
        note = {
            "source": str(self.run.path),
            "updates": self.updates,
            "note": "metrics.json is the source run's; run `lightgode evaluate` for the updated graph",
        }
        return write_embedding_run(
            out,
            self.split,
            g.E0[: g.n_users],
            g.E0[g.n_users :],
            self.run.config,
            copy_from=self.run.path,
            extra={"update.json": note} if self.updates else None,
            overwrite=overwrite,
        )


def write_embedding_run(
    out: str | os.PathLike,
    split: Split,
    user_E0: torch.Tensor,
    item_E0: torch.Tensor,
    config: dict,
    *,
    metrics: dict | None = None,
    copy_from: Path | None = None,
    extra: dict[str, dict] | None = None,
    overwrite: bool = False,
) -> Path:
    """A complete run directory from a split and E0 embeddings, without training (``artifacts.staged``: built
    beside ``out`` and renamed). ``config`` is a run's config.json dictionary; ``copy_from`` is a run whose
    metrics.json, train.json and history.csv are carried over (else ``metrics``, default {}); ``out`` may be
    ``copy_from`` itself (replaced in place), another existing ``out`` is replaced only with ``overwrite``."""
    out = Path(out)
    with artifacts.staged(out, overwrite=overwrite, source=copy_from, same_ok=True) as staging:
        artifacts.write_json(staging / "config.json", config)
        artifacts.write_metrics(staging, metrics or {})
        for name in ("metrics.json", "train.json", "history.csv"):
            if copy_from is not None and (Path(copy_from) / name).is_file():
                shutil.copy2(Path(copy_from) / name, staging / name)
        for name, obj in (extra or {}).items():
            artifacts.write_json(staging / name, obj)
        save_split(split, staging / "split")
        artifacts.save_weights(staging / "weights.safetensors", user_E0, item_E0, {"format": "lightgode-E0"})
    return out


def _grow(m: sp.csr_matrix, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """m padded with empty rows and columns to (n_rows, n_cols)."""
    m = m.tocsr()
    indptr = np.concatenate([m.indptr, np.full(n_rows - m.shape[0], m.indptr[-1])])
    return sp.csr_matrix((m.data, m.indices, indptr), shape=(n_rows, n_cols))


class _Positions:
    """Raw id -> index lookups (sorted search), extendable with new ids."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = as_ids(ids)
        ids = self.ids
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        self._dict: dict[str, int] | None = None

    def index(self, raw, kind: str) -> int:
        if self._dict is None:
            self._dict = {str(x): n for n, x in enumerate(self.ids.tolist())}
        try:
            return self._dict[str(raw)]
        except KeyError:
            from lightgode.errors import UnknownIdError

            raise UnknownIdError(f"unknown {kind} id {show_id(raw)}") from None

    def indices(self, raws: list, kind: str) -> np.ndarray:
        return np.array([self.index(r, kind) for r in raws], dtype=np.int64)

    def lookup(self, raw: np.ndarray) -> np.ndarray:
        """Indices of raw ids, -1 where unknown."""
        if not len(self.ids):
            return np.full(len(raw), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, raw), len(self.ids) - 1)
        return np.where(self._sorted[pos] == raw, self._order[pos], -1).astype(np.int64)

    def extend(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of raw ids, numbering unknown ones after the known ones (first appearance order)."""
        idx = self.lookup(raw)
        unknown = idx < 0
        new_ids = np.array([], dtype=self.ids.dtype)
        if unknown.any():
            uniq, first, inv = np.unique(raw[unknown], return_index=True, return_inverse=True)
            rank = np.empty(len(uniq), dtype=np.int64)
            rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
            idx[unknown] = len(self.ids) + rank[inv.ravel()]
            new_ids = uniq[np.argsort(rank)]
        return idx, new_ids
