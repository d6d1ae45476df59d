"""Ranking metrics against values computed by hand."""

import math

import numpy as np
import pytest

from embedding import metrics

# One query whose only relevant item sits at rank 3 of 6.
RANK_3 = np.array([[False, False, True, False, False, False]])


def test_single_relevant_item_at_rank_three():
    assert metrics.recall_at_k(RANK_3, 1) == 0.0
    assert metrics.recall_at_k(RANK_3, 2) == 0.0
    assert metrics.recall_at_k(RANK_3, 3) == 1.0
    assert metrics.recall_at_k(RANK_3, 5) == 1.0
    assert metrics.mrr(RANK_3) == pytest.approx(1 / 3)
    assert metrics.ndcg_at_k(RANK_3, 5) == pytest.approx(1 / math.log2(4))
    assert metrics.ndcg_at_k(RANK_3, 2) == 0.0
    assert metrics.precision_at_k(RANK_3, 5) == pytest.approx(1 / 5)


def test_means_over_queries():
    relevance = np.array([
        [True, False, False, False],   # rank 1
        [False, False, False, True],   # rank 4
        [False, False, False, False],  # never found
    ])
    assert metrics.recall_at_k(relevance, 1, n_relevant=1) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(relevance, 4, n_relevant=1) == pytest.approx(2 / 3)
    assert metrics.mrr(relevance) == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert metrics.ndcg_at_k(relevance, 4, n_relevant=1) == pytest.approx(
        (1 + 1 / math.log2(5) + 0) / 3)


def test_several_relevant_items():
    # relevant at ranks 1 and 3, three relevant in all (one never ranked)
    relevance = np.array([[True, False, True, False]])
    assert metrics.recall_at_k(relevance, 3, n_relevant=3) == pytest.approx(2 / 3)
    assert metrics.precision_at_k(relevance, 2) == pytest.approx(1 / 2)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at_k(relevance, 3, n_relevant=3) == pytest.approx(dcg / idcg)
    # counted from the ranking itself, only two are relevant
    assert metrics.ndcg_at_k(relevance, 3) == pytest.approx(dcg / (1 + 1 / math.log2(3)))


def test_capped_precision_divides_by_what_is_achievable():
    relevance = np.array([[True, False, True, False, False]])  # 2 relevant, both in top 5
    assert metrics.precision_at_k(relevance, 5) == pytest.approx(2 / 5)
    assert metrics.precision_at_k(relevance, 5, capped=True) == 1.0
    assert metrics.precision_at_k(relevance, 2, capped=True) == pytest.approx(1 / 2)


def test_ranked_relevance_orders_by_descending_score():
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]])
    relevant = np.array([[True, False, False], [False, True, False]])
    ranked = metrics.ranked_relevance(scores, relevant)
    assert ranked.tolist() == [[False, False, True], [False, True, False]]
    assert metrics.ranked_relevance(scores, relevant, k=2).shape == (2, 2)
    assert metrics.mrr(ranked) == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_perfect_ranking_scores_one():
    relevance = np.eye(5, dtype=bool)[:, :1].T.repeat(3, 0)  # relevant at rank 1 everywhere
    for k in (1, 5):
        assert metrics.recall_at_k(relevance, k) == 1.0
        assert metrics.ndcg_at_k(relevance, k) == 1.0
    assert metrics.mrr(relevance) == 1.0


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        metrics.recall_at_k(np.zeros(3, bool), 1)
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(RANK_3, 0)
