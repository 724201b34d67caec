import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lightgode.core.evaluate import (
    EvalConfig,
    embedding_scorer,
    full_ranking,
    ranking_metrics,
    scoring_threads,
    topk_masked,
)
from lightgode.errors import ConfigError


def csr(rows, n_users, n_items):
    r, c = zip(*[(u, i) for u, items in rows.items() for i in items]) if rows else ((), ())
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_users, n_items))


def test_metrics_against_hand_computed_list():
    # ranked list: hit, miss, hit, miss, miss; 3 relevant items in all
    hits = torch.tensor([[1, 0, 1, 0, 0]], dtype=torch.float64)
    m = ranking_metrics(hits, torch.tensor([3.0]), [1, 3, 5])
    assert float(m["recall@3"][0]) == pytest.approx(2 / 3)
    assert float(m["precision@5"][0]) == pytest.approx(2 / 5)
    assert float(m["hit@1"][0]) == 1.0
    assert float(m["mrr@5"][0]) == 1.0
    dcg = 1 + 1 / math.log2(4)
    assert float(m["ndcg@3"][0]) == pytest.approx(dcg / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    # ideal DCG over min(|relevant|, K)
    assert float(m["ndcg@1"][0]) == pytest.approx(1.0)
    hits2 = torch.tensor([[0, 0, 1, 0, 0]], dtype=torch.float64)
    m2 = ranking_metrics(hits2, torch.tensor([1.0]), [2, 5])
    assert float(m2["mrr@5"][0]) == pytest.approx(1 / 3)
    assert float(m2["mrr@2"][0]) == 0.0
    assert float(m2["ndcg@5"][0]) == pytest.approx(1 / math.log2(4))


def test_full_ranking_masks_seen_items_and_skips_users_without_relevant():
    # scores favour item 0 for everyone; user 0 saw item 0, so its top item must be item 1
    user_emb = torch.tensor([[1.0], [1.0], [1.0]])
    item_emb = torch.tensor([[3.0], [2.0], [1.0], [0.5]])
    relevant = csr({0: [1], 1: [3]}, 3, 4)  # user 2 has no relevant item: skipped
    exclude = csr({0: [0]}, 3, 4)
    config = EvalConfig(ks=(1, 4), valid_metric="ndcg@1")
    m = full_ranking(embedding_scorer(user_emb, item_emb), relevant, exclude, config)
    assert m["hit@1"] == pytest.approx(0.5)  # user 0 hits at rank 1, user 1 has item 3 at rank 4
    assert m["mrr@4"] == pytest.approx((1 + 1 / 4) / 2)
    unmasked = full_ranking(embedding_scorer(user_emb, item_emb), relevant, None, config)
    assert unmasked["hit@1"] == 0.0


def test_batched_equals_single_batch():
    U, I = torch.randn(50, 8), torch.randn(30, 8)
    rel = sp.random(50, 30, density=0.1, random_state=1, format="csr")
    exc = sp.random(50, 30, density=0.2, random_state=2, format="csr")
    a = full_ranking(embedding_scorer(U, I), rel, exc, EvalConfig(batch_size=7))
    b = full_ranking(embedding_scorer(U, I), rel, exc, EvalConfig(batch_size=1000))
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9)


@pytest.mark.parametrize(
    "bad", [{"ks": (0,)}, {"ks": (-5, 20)}, {"batch_size": 0}, {"valid_metric": "auc@20"}, {"valid_metric": "ndcg@7"}]
)
def test_bad_eval_config(bad):
    with pytest.raises(ConfigError):
        EvalConfig(**bad)


@pytest.mark.parametrize("n_threads", [2, 3])
def test_pooled_top_k_equals_one_top_k_of_the_masked_block(n_threads):
    # small integer embeddings: many exact ties, where a different top-k order would show
    g = torch.Generator().manual_seed(0)
    user_emb = torch.randint(-2, 3, (40, 4), generator=g).float()
    item_emb = torch.randint(-2, 3, (300, 4), generator=g).float()
    rng = np.random.default_rng(0)
    exclude = sp.random(40, 300, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    users = np.array([3, 0, 7, 39, 12, 5, 21, 30, 8])
    scores = user_emb[users] @ item_emb.T
    scores[torch.from_numpy(exclude[users].toarray()) != 0] = -torch.inf
    want_scores, want_idx = torch.topk(scores, 50, dim=1, sorted=True)
    torch_threads = torch.get_num_threads()
    with scoring_threads(n_threads) as pool:
        got_scores, got_idx = topk_masked(embedding_scorer(user_emb, item_emb), users, exclude, 50, pool=pool)
    assert torch.get_num_threads() == torch_threads  # restored after the block
    assert torch.equal(got_idx, want_idx)
    assert torch.equal(got_scores, want_scores)


def test_full_ranking_equals_a_dense_straightforward_evaluation():
    g = torch.Generator().manual_seed(1)
    user_emb, item_emb = torch.randn(200, 8, generator=g), torch.randn(150, 8, generator=g)
    rng = np.random.default_rng(1)
    exclude = sp.random(200, 150, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    relevant = sp.random(200, 150, density=0.03, format="csr", random_state=rng, dtype=np.float32)
    relevant = (relevant - relevant.multiply(exclude != 0)).tocsr()
    relevant.eliminate_zeros()
    config = EvalConfig(ks=(5, 20), valid_metric="ndcg@20", batch_size=64)
    got = full_ranking(embedding_scorer(user_emb, item_emb), relevant, exclude, config)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    scores = user_emb[users] @ item_emb.T
    scores[torch.from_numpy(exclude[users].toarray()) != 0] = -torch.inf
    idx = torch.topk(scores, 20, dim=1).indices
    rel = torch.from_numpy(relevant[users].toarray() != 0)
    hits = rel.gather(1, idx).double()
    want = ranking_metrics(hits, rel.sum(1), config.ks)
    for key, v in want.items():
        assert got[key] == pytest.approx(float(v.mean()), rel=1e-12, abs=1e-15)
