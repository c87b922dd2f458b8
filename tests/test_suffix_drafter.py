"""The suffix drafter on hand-made token sequences: matching, voting, confidence, eviction."""

from __future__ import annotations

from turnout.runtimes.local.costcurve import CPU_DEFAULT, CostCurve
from turnout.runtimes.local.drafters import Draft, Drafter, NoDrafter, SuffixDrafter, SuffixIndex
from turnout.runtimes.local.speculative import best_draft_length


def test_the_longest_earlier_match_is_found_first_with_its_length() -> None:
    index = SuffixIndex(key_length=2)
    index.add_document([1, 2, 3, 4, 5, 9, 3, 4, 6])
    # The context ends in 2 3 4: the first occurrence matches 3 tokens back, the second 2.
    found = index.matches([7, 2, 3, 4])
    assert found[0] == (4, 3)
    assert (8, 2) in found


def test_matches_do_not_cross_from_one_document_into_another() -> None:
    index = SuffixIndex(key_length=2)
    index.add_document([1, 2, 3])
    index.add_document([4, 5, 6])
    # 3 then 4 are adjacent in storage but in different documents: no match for (3, 4).
    assert index.matches([3, 4]) == []
    # and a match at the end of a document has no continuation to offer.
    drafter = SuffixDrafter(index, min_match=2)
    assert drafter.propose([9, 2, 3], 8).tokens == []


def test_the_drafter_copies_a_long_earlier_continuation_with_high_confidence() -> None:
    drafter = SuffixDrafter(min_match=3)
    earlier = list(range(100, 140))
    drafter.begin(earlier)
    drafter.finish(earlier)
    drafter.begin([7, 8, *earlier[:20]])
    draft = drafter.propose([7, 8, *earlier[:20]], 10)
    assert draft.tokens == earlier[20:30]
    assert all(c > 0.8 for c in draft.confidence)


def test_a_short_match_drafts_nothing() -> None:
    drafter = SuffixDrafter(min_match=3)
    drafter.begin([1, 2, 3, 4, 5])
    assert drafter.propose([1, 2, 3, 4, 5, 9, 4, 5], 8).tokens == []


def test_the_continuation_seen_more_often_wins_the_vote() -> None:
    drafter = SuffixDrafter(min_match=3)
    session = [1, 10, 11, 12, 50, 2, 10, 11, 12, 60, 3, 10, 11, 12, 60, 4]
    drafter.begin(session)
    draft = drafter.propose([*session, 10, 11, 12], 1)  # each earlier match is 3 tokens long
    assert draft.tokens == [60]
    # Two of three earlier matches agree: the drafter is not sure.
    assert draft.confidence[0] < 0.5


def test_rejections_lower_the_confidence_and_acceptances_raise_it() -> None:
    sequence = list(range(200, 260))
    drafter = SuffixDrafter()
    drafter.begin(sequence)
    context = [*sequence, *sequence[:10]]
    before = drafter.propose(context, 4).confidence[0]
    for _ in range(5):
        drafter.propose(context, 4)
        drafter.feedback(4, 0)
    after_rejections = drafter.propose(context, 4).confidence[0]
    for _ in range(20):
        drafter.propose(context, 4)
        drafter.feedback(4, 4)
    after_acceptances = drafter.propose(context, 4).confidence[0]
    assert after_rejections < before * 0.5
    assert after_acceptances > after_rejections


def test_a_chat_that_goes_on_extends_its_document_instead_of_storing_it_twice() -> None:
    drafter = SuffixDrafter()
    drafter.begin([1, 2, 3, 4])
    drafter.finish([1, 2, 3, 4, 5, 6])  # the reply
    drafter.begin([1, 2, 3, 4, 5, 6, 7, 8])  # next call: history plus a new turn
    assert len(drafter.index.document_starts) == 1
    assert drafter.index.current_document() == [1, 2, 3, 4, 5, 6, 7, 8]
    drafter.begin([9, 9, 9])  # an unrelated prompt is a new document
    assert len(drafter.index.document_starts) == 2


def test_the_oldest_documents_are_evicted_past_capacity_and_the_index_still_works() -> None:
    index = SuffixIndex(capacity=100, key_length=2)
    first = list(range(1000, 1040))
    index.add_document(first)
    index.add_document(list(range(2000, 2040)))
    index.add_document(list(range(3000, 3040)))  # 123 tokens with separators: over capacity
    assert len(index) <= 100
    assert index.matches([1000, 1001]) == []  # the oldest document is gone
    found = index.matches([3010, 3011])
    assert found and index.tokens[found[0][0]] == 3012  # positions were re-indexed
    assert index.current_document() == list(range(3000, 3040))


def test_draft_length_follows_the_cost_curve_and_the_confidence() -> None:
    sure = Draft(tokens=list(range(32)), confidence=[0.99] * 32)
    unsure = Draft(tokens=list(range(32)), confidence=[0.3] * 32)
    gpu_like = CostCurve(ratios={1: 1.0, 4: 1.7, 16: 2.7, 32: 3.0})
    assert best_draft_length(unsure, CPU_DEFAULT, 0.0, 32) == 0
    on_cpu = best_draft_length(sure, CPU_DEFAULT, 0.0, 32)
    on_gpu = best_draft_length(sure, gpu_like, 0.0, 32)
    assert 1 <= on_cpu < on_gpu
    # A drafter that costs half a target step per token drafts less than a free one.
    assert best_draft_length(sure, CPU_DEFAULT, 0.5, 32) <= on_cpu


def test_the_drafters_satisfy_the_protocol() -> None:
    assert isinstance(SuffixDrafter(), Drafter)
    assert isinstance(NoDrafter(), Drafter)


def test_the_newest_copy_outvotes_an_older_one_whose_match_is_a_token_longer() -> None:
    # An agent copies the latest version of a file, not the first it saw.
    drafter = SuffixDrafter(min_match=3)
    shared = list(range(10, 20))
    session = [1, 9, *shared, 50, 2, *shared, 60, 3]
    drafter.begin(session)
    # The older copy matches 11 tokens back (9 too), the newer one 10.
    assert drafter.propose([*session, 9, *shared], 1).tokens == [60]


def test_shyness_after_rejections_wears_off_as_text_goes_by() -> None:
    sequence = list(range(200, 260))
    drafter = SuffixDrafter()
    drafter.begin(sequence)
    context = [*sequence, *sequence[:10]]
    for _ in range(5):
        drafter.propose(context, 4)
        drafter.feedback(4, 0)
    shy = drafter.propose(context, 4).confidence[0]
    # 48 tokens the drafter had nothing to say about, then a copy of the start again: a stretch
    # of wrong drafts must not keep it from drafting for the rest of the session.
    later = [*context, *range(500, 548), *sequence[10:20]]
    recovered = drafter.propose(later, 4)
    assert recovered.tokens == sequence[20:24]
    assert recovered.confidence[0] > 3 * shy
