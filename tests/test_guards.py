"""The loop detector's signals and its ladder of responses, and the repetition guard."""

from __future__ import annotations

import json

from turnout.agent.guards import LoopConfig, LoopDetector, failure_signature
from turnout.runtimes.local.repetition import RepetitionConfig, RepetitionGuard, llama_cpp_processor

FAILING = "FAILED tests/test_calc.py::test_add - assert -1 == 5\nE   assert -1 == 5\n1 failed in 0.03s"


def repeat_call(detector: LoopDetector, times: int, result: str = "ERROR: old not found") -> list[str]:
    actions = []
    for step in range(1, times + 1):
        detector.record_call(step, "replace_in_file", {"path": "calc.py", "old": "x"}, result, True)
        actions.append(detector.verdict().action)
    return actions


def test_the_same_call_with_the_same_result_is_nudged_then_escalated_then_stopped() -> None:
    actions = repeat_call(LoopDetector(), 5)

    assert actions == ["continue", "continue", "nudge", "escalate", "stop"]


def test_without_escalation_the_ladder_goes_from_nudge_to_stop() -> None:
    actions = repeat_call(LoopDetector(LoopConfig(allow_escalation=False)), 4)

    assert actions == ["continue", "continue", "nudge", "stop"]


def test_the_same_call_returning_something_new_each_time_is_not_a_loop() -> None:
    detector = LoopDetector()
    for step in range(1, 7):
        detector.record_call(step, "read_file", {"path": "log.txt"}, f"line {step}", False)
        assert detector.verdict().action == "continue"


def test_timings_in_a_result_do_not_hide_a_repeat() -> None:
    detector = LoopDetector()
    actions = []
    for step, seconds in enumerate(["0.03s", "0.05s", "0.04s"], 1):
        detector.record_call(step, "run_tests", {}, f"1 failed in {seconds}", False)
        actions.append(detector.verdict().action)

    assert actions[-1] == "nudge"


def test_an_a_b_a_b_cycle_is_caught_at_its_fourth_step() -> None:
    detector = LoopDetector()
    actions = []
    for step in range(1, 9):
        name = "read_file" if step % 2 else "list_files"
        detector.record_call(step, name, {"path": "."}, f"{name} output", False)
        actions.append(detector.verdict().action)

    assert actions[:4] == ["continue", "continue", "continue", "nudge"]
    assert actions[4:] == ["continue", "escalate", "continue", "stop"]
    assert detector.evidence[0].signal == "call_cycle"
    assert "read_file" in detector.evidence[0].detail and "list_files" in detector.evidence[0].detail


def test_a_five_call_cycle_is_caught_within_three_steps_of_its_second_round() -> None:
    detector = LoopDetector()
    names = ["a", "b", "c", "d", "e"]
    first_flag = None
    for step in range(1, 11):
        name = names[(step - 1) % 5]
        detector.record_call(step, name, {}, f"{name} says hi", False)
        if detector.verdict().action != "continue" and first_flag is None:
            first_flag = step

    assert first_flag is not None and first_flag <= 6 + 3


def test_the_same_failure_after_edits_that_changed_nothing_is_flagged() -> None:
    detector = LoopDetector()
    detector.record_tests(0, FAILING, passed=False)
    assert detector.verdict().action == "continue"
    detector.record_edit(1, "calc.py", "# one\n", "# two\n")
    detector.record_tests(1, FAILING.replace("0.03s", "0.04s"), passed=False)
    assert detector.verdict().action == "continue"
    detector.record_edit(2, "calc.py", "# two\n", "# three\n")
    detector.record_tests(2, FAILING, passed=False)
    verdict = detector.verdict()

    assert verdict.action == "nudge"
    assert verdict.evidence[0].signal == "same_failure"
    assert "assert -1 == 5" in verdict.evidence[0].detail
    assert "did not change the failure" in verdict.message


def test_tests_re_run_without_an_edit_are_not_a_failed_fix() -> None:
    detector = LoopDetector()
    for step in range(4):
        detector.record_tests(step, FAILING, passed=False)
        assert detector.verdict().action == "continue"


def test_a_failure_that_changes_is_progress_and_resets_the_ladder() -> None:
    detector = LoopDetector()
    repeat_call(detector, 3)  # nudge: strike one
    detector.record_tests(4, FAILING, passed=False)
    detector.record_tests(5, "FAILED tests/test_calc.py::test_mean - ZeroDivisionError", passed=False)
    detector.verdict()
    detector.record_call(6, "read_file", {"path": "calc.py"}, "text", False)
    detector.record_call(6, "read_file", {"path": "calc.py"}, "text", False)
    detector.record_call(6, "read_file", {"path": "calc.py"}, "text", False)

    assert detector.verdict().action == "nudge"


def test_an_edit_followed_by_its_own_revert_is_flagged() -> None:
    detector = LoopDetector()
    detector.record_edit(1, "calc.py", "return a - b\n", "return a * b\n")
    assert detector.verdict().action == "continue"
    detector.record_edit(2, "calc.py", "return a * b\n", "return a - b\n")
    verdict = detector.verdict()

    assert verdict.action == "nudge"
    assert verdict.evidence[0].signal == "edit_reverted"
    assert "calc.py" in verdict.evidence[0].detail


def test_successive_edits_that_move_forward_are_not_reverts() -> None:
    detector = LoopDetector()
    versions = ["v0", "v1", "v2", "v3", "v4"]
    for step in range(1, 5):
        detector.record_edit(step, "calc.py", versions[step - 1], versions[step])
        assert detector.verdict().action == "continue"


def test_a_reply_ended_for_degenerate_repetition_is_a_loop_signal_with_the_tokens_saved() -> None:
    detector = LoopDetector()
    detector.record_reply(1, valid_calls=0, problems=0, repetition_aborted=True, tokens_saved=900)
    verdict = detector.verdict()

    assert verdict.action == "nudge"
    assert verdict.evidence[0].signal == "degenerate_repetition"
    assert verdict.evidence[0].repeats == 900


def test_invalid_replies_are_re_asked_a_bounded_number_of_times_then_flagged() -> None:
    detector = LoopDetector(LoopConfig(max_reasks=2))
    actions = []
    for step in range(1, 5):
        detector.record_reply(step, valid_calls=0, problems=1, repetition_aborted=False)
        actions.append(detector.verdict().action)

    assert actions == ["continue", "continue", "nudge", "escalate"]


def test_the_detector_survives_a_round_trip_through_its_checkpointed_state() -> None:
    detector = LoopDetector()
    repeat_call(detector, 2)
    restored = LoopDetector(state=json.loads(json.dumps(detector.dump())))

    assert repeat_call(restored, 1) == ["nudge"]


def test_a_disabled_detector_never_answers() -> None:
    assert repeat_call(LoopDetector(LoopConfig(enabled=False)), 6) == ["continue"] * 6


def test_the_failure_signature_ignores_timings_and_keeps_the_error_lines() -> None:
    signature = failure_signature("....\n" + FAILING)

    assert "assert -1 == 5" in signature and "0.03" not in signature
    assert signature == failure_signature(FAILING.replace("0.03s", "1.20s"))


# -- degenerate repetition inside one reply --------------------------------------------------


def test_a_reply_that_degenerates_into_one_repeated_unit_trips_within_64_tokens() -> None:
    prose = list(range(100, 140))  # 40 distinct tokens of real text
    unit = [7, 8, 9, 10, 11, 12, 13]
    guard = RepetitionGuard()
    tripped_at = None
    for index, token in enumerate(prose + unit * 30):
        if guard.feed(token):
            tripped_at = index
            break

    assert tripped_at is not None
    assert tripped_at - len(prose) < 64
    assert guard.period == 7 and guard.started_at == len(prose)


def test_a_long_unit_of_sixteen_tokens_is_caught_at_its_fourth_repeat() -> None:
    guard = RepetitionGuard()
    unit = list(range(16))

    assert not guard.feed_all(unit * 3 + unit[:15])
    assert guard.feed(15)
    assert guard.tripped_at == 64


def test_text_that_never_repeats_a_unit_four_times_is_left_alone() -> None:
    guard = RepetitionGuard()
    # Code-like: the same line three times, then something else, repeatedly.
    line = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    tokens = []
    for block in range(20):
        tokens += line * 3 + [1000 + block]

    assert not guard.feed_all(tokens)


def test_the_guard_can_be_switched_off() -> None:
    assert not RepetitionGuard(RepetitionConfig(enabled=False)).feed_all([5] * 500)


def test_the_llama_cpp_processor_forces_end_of_sequence_once_the_guard_trips() -> None:
    import numpy as np

    guard = RepetitionGuard(RepetitionConfig(min_tokens=8, min_repeats=4))
    process = llama_cpp_processor(guard, end_of_sequence=2)
    prompt = [50, 51, 52]
    context = list(prompt)
    scores = np.zeros(10, dtype=np.float32)
    forced_at = None
    for step in range(40):
        out = process(np.array(context), scores.copy())
        if out[2] == 0.0 and np.isinf(out[[0, 1, 3]]).all():
            forced_at = step
            break
        context.append(4)  # the model keeps emitting token 4

    assert forced_at == 8  # 8 generated tokens of the same unit: the 9th choice is forced
