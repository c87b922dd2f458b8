"""The ceiling replay on hand-made traces: no model, the drafter and the cost curve only."""

from __future__ import annotations

from pathlib import Path

import pytest
from turnout.agent.cli.main import main
from turnout.bench.ceiling import (
    H100_CURVE,
    CallTrace,
    Traces,
    ceiling_report,
    copy_bound,
    replay,
)
from turnout.runtimes.local.costcurve import CPU_DEFAULT, CostCurve

EOG = 99_999
FILE = list(range(1000, 1080))  # an 80-token "file" in the prompt


def copy_call() -> CallTrace:
    # The reply returns the file whole: after the first few tokens it is all draftable.
    return CallTrace(prompt=[1, 2, *FILE, 3, 4], output=FILE, stopped=True, max_tokens=200)


def fresh_call() -> CallTrace:
    return CallTrace(prompt=[1, 2, 3], output=list(range(5000, 5060)), stopped=False, max_tokens=60)


def test_a_reply_that_copies_its_prompt_replays_faster_and_the_oracle_bounds_it() -> None:
    modelled = replay([copy_call()], EOG, CPU_DEFAULT, oracle=False)
    best = replay([copy_call()], EOG, CPU_DEFAULT, oracle=True)

    assert modelled.tokens == 80 and modelled.accepted > 60
    assert modelled.speedup > 1.5
    assert best.speedup >= modelled.speedup
    assert best.accepted == best.drafted  # the oracle never verifies a wrong token
    # A cheaper batch (a GPU) is worth more for the same proposals.
    assert replay([copy_call()], EOG, H100_CURVE, oracle=True).speedup > best.speedup


def test_text_never_seen_before_costs_one_step_per_token() -> None:
    for oracle in (False, True):
        result = replay([fresh_call()], EOG, CPU_DEFAULT, oracle=oracle)
        assert result.drafted == 0
        assert result.cost == 59  # one step per token; none after the budget's last
        assert result.speedup == 1.0


def test_a_later_call_drafts_from_an_earlier_reply_in_the_same_session() -> None:
    first = CallTrace(prompt=[1, 2, 3], output=FILE, stopped=True, max_tokens=200)
    again = CallTrace(prompt=[7, 8, 9], output=FILE, stopped=True, max_tokens=200)
    alone = replay([again], EOG, CPU_DEFAULT, oracle=False)
    after = replay([first, again], EOG, CPU_DEFAULT, oracle=False)
    assert alone.drafted == 0
    assert after.accepted > 60  # all from the first call's reply


def test_the_copy_bound_drafts_every_copyable_token_in_the_cheapest_batches() -> None:
    # With batches as cheap as one token, the 80 copied tokens take three batches: the first
    # token (from the prompt) plus 32 drafts, the next chosen token plus 32, then the last 13
    # plus the row that sees the end.
    free = CostCurve(ratios={1: 1.0, 64: 1.0})
    assert copy_bound([copy_call()], free) == pytest.approx(80 / 3)
    # At this CPU's prices it is still the most any copying drafter could give.
    oracle = replay([copy_call()], EOG, CPU_DEFAULT, oracle=True).speedup
    assert copy_bound([copy_call()], CPU_DEFAULT) >= oracle > 1.5


def test_the_copy_bound_of_new_text_is_plain_decoding_and_earlier_replies_count() -> None:
    assert copy_bound([fresh_call()], H100_CURVE) == 1.0
    first = CallTrace(prompt=[1, 2, 3], output=FILE, stopped=True, max_tokens=200)
    again = CallTrace(prompt=[7, 8, 9], output=FILE, stopped=True, max_tokens=200)
    other = CallTrace(prompt=[7, 8, 9], output=list(range(6000, 6080)), stopped=True, max_tokens=200)
    # Alone, the second reply is new text (its first pair, 9 then 1000, too); after the first
    # call all but its first token can be copied from the earlier reply.
    assert copy_bound([again], CPU_DEFAULT) == 1.0
    assert copy_bound([first, other], CPU_DEFAULT) == 1.0
    assert copy_bound([first, again], CPU_DEFAULT) > 1.4


def test_the_report_and_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traces = Traces(model="hand-made", eog=EOG, curve=CPU_DEFAULT,
                    workloads={"copy": [copy_call()], "fresh": [fresh_call()]})
    report = ceiling_report(traces)
    assert report["workloads"]["copy"]["this_machine"]["oracle"] > 1.5
    assert report["workloads"]["fresh"]["h100"]["modelled"] == 1.0
    assert report["workloads"]["fresh"]["this_machine"]["bound"] == 1.0
    copy = report["workloads"]["copy"]["this_machine"]
    assert copy["bound"] >= copy["oracle"]

    path = tmp_path / "traces.json"
    path.write_text(traces.model_dump_json())
    assert main(["bench", "ceiling", "--traces", str(path), "--json"]) == 0
    assert '"copy"' in capsys.readouterr().out

    path.write_text('{"model": "cut sho')
    assert main(["bench", "ceiling", "--traces", str(path)]) == 2
    assert "--record" in capsys.readouterr().err
