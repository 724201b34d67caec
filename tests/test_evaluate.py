import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lightgode.core.evaluate import EvalConfig, embedding_scorer, full_ranking, ranking_metrics
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
