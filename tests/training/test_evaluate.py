import numpy as np
import pytest

from training.evaluate import direction_metrics, mrr_interval, partner_ranks, retrieval_metrics, top_cosine


def test_known_ranks_give_known_mrr_and_ar():
    # Row i ranks its partner (the diagonal) at 1, 2 and 3.
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.9, 0.8, 0.1]])
    np.testing.assert_array_equal(partner_ranks(scores), [1, 2, 3])
    metrics = direction_metrics(scores, np.eye(3)[:, :2] + 0.1)
    assert metrics.mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert metrics.ar == pytest.approx(2.0)


def test_the_mrr_interval_holds_the_mrr_and_narrows_with_more_queries():
    ranks = np.tile([1.0, 2.0, 5.0, 10.0, 30.0], 6)  # 30 queries, MRR 0.366
    low, high = mrr_interval(ranks)
    assert low < np.mean(1 / ranks) < high
    assert 0.1 < high - low < 0.4  # what 30 pieces allow
    wide, many = high - low, np.subtract(*mrr_interval(np.tile(ranks, 20))[::-1])
    assert many < wide / 3  # 20 times the queries: about a root of 20 narrower
    assert mrr_interval(ranks) == mrr_interval(ranks)  # seeded
    assert mrr_interval(np.ones(8)) == (1.0, 1.0)  # every partner first: nothing to move


def test_ties_share_their_mean_rank():
    scores = np.array([[1.0, 1.0, 1.0, 0.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    assert partner_ranks(scores)[0] == pytest.approx(2.0)  # three-way tie for ranks 1-3


def test_top_cosine_on_a_constructed_case():
    va = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]] * 10)
    perfect = np.where(np.equal.outer(np.arange(30) % 3, np.arange(30) % 3), 1.0, 0.0)
    assert top_cosine(perfect, va) == pytest.approx(1.0)
    opposite = np.where(np.equal.outer(np.arange(30) % 3, (np.arange(30) + 2) % 3), 1.0, 0.0)
    assert top_cosine(opposite, va) < 0.5


def test_perfect_retrieval_has_mrr_one_in_both_directions():
    scores = np.eye(5) * 2 - 1
    metrics = retrieval_metrics(scores, scores, np.ones((5, 2)))
    assert metrics.n_test == 5
    assert metrics.m2e.mrr == metrics.e2m.mrr == 1.0 and metrics.e2m.ar == 1.0


def test_va_agreement_of_the_top_k_against_the_nearest_readings():
    from training.evaluate import va_agreement

    reading = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    query = np.array([[0.0, 0.0]])
    worst_first = np.array([[0.0, 2.0, 1.0]])  # ranks item 1, then 2, then 0
    agreement = va_agreement(worst_first, query, reading, k=2)
    assert agreement.top_k_distance == pytest.approx(1.0) and agreement.nearest_distance == pytest.approx(0.5)
