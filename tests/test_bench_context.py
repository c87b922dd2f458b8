"""`turnout bench context`: argument errors, the report's arithmetic, and one small real run."""

from __future__ import annotations

import pytest
from turnout.agent.cli.main import main
from turnout.bench.context import Sample, parse_lengths, parse_settings, render, report, run_bench
from turnout.runtimes.errors import UsageError
from turnout.runtimes.local import models


def sample(length: int, decode_tps: float, reply: list[int], kv_mb: float = 1.0) -> Sample:
    return Sample(
        prompt_tokens=length + 1, prefill_tps=100.0, first_token_cold_s=length / 100.0,
        first_token_warm_s=0.5, warm_new_tokens=40, decode_tps=decode_tps, kv_mb=kv_mb, reply=reply,
    )


def test_lengths_are_sorted_deduplicated_and_must_be_positive_numbers() -> None:
    assert parse_lengths("4096,1024,1024") == [1024, 4096]
    with pytest.raises(UsageError, match="comma list of token counts"):
        parse_lengths("1k,2k")
    with pytest.raises(UsageError, match="positive token counts"):
        parse_lengths("0,512")


def test_an_unknown_kv_setting_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_settings("q8_0-fa,f16,q8_0-fa") == ["q8_0-fa", "f16"]
    # Refused before any model is loaded, with exit status 2 and the settings to pick from.
    assert main(["bench", "context", "--kv", "f16,q4"]) == 2
    err = capsys.readouterr().err
    assert "--kv" in err and "f16-fa" in err and "'f16,q4'" in err


def test_the_report_takes_medians_and_compares_decode_with_the_shortest_prompt() -> None:
    samples = {
        ("f16", 1024): [sample(1024, 10.0, [1, 2]), sample(1024, 12.0, [1, 2]), sample(1024, 30.0, [1, 2])],
        ("f16", 4096): [sample(4096, 9.0, [1, 2]), sample(4096, 6.0, [1, 2]), sample(4096, 8.0, [1, 2])],
        ("q8_0-fa", 1024): [sample(1024, 11.0, [1, 2], 0.5)] * 3,
        # One round of three differs from f16's reply: the setting is not exact at this length.
        ("q8_0-fa", 4096): [sample(4096, 11.0, [1, 2]), sample(4096, 11.0, [1, 3]), sample(4096, 11.0, [1, 2])],
    }
    out = report("m", 2, 3, 5000, 32, [1024, 4096], ["f16", "q8_0-fa"], samples)
    points = {(p["setting"], p["prompt_tokens"]): p for p in out["points"]}

    assert points[("f16", 1025)]["decode_tps"] == 12.0  # the median, not the 30.0 outlier
    assert points[("f16", 4097)]["decode_vs_shortest"] == pytest.approx(8.0 / 12.0, abs=1e-3)
    assert points[("q8_0-fa", 1025)]["kv_mb"] == 0.5
    assert points[("q8_0-fa", 1025)]["same_output"] is True
    assert points[("q8_0-fa", 4097)]["same_output"] is False
    table = render(out)
    assert "q8_0-fa" in table and "0.67x" in table and "!" in table


@pytest.mark.model
def test_a_small_real_run_reuses_the_prefix_and_a_q8_cache_is_smaller() -> None:
    if not models.is_installed("smollm2-135m"):
        pytest.fail("run `turnout models install smollm2-135m` (make test does it)")
    out = run_bench(
        model="smollm2-135m", threads=2, rounds=1, lengths=[128, 384], settings=["f16", "q8_0-fa"],
        decode=4, say=lambda _: None,
    )
    points: dict[tuple[str, int], dict] = {}
    for p in out["points"]:
        length = min((128, 384), key=lambda n: abs(n - p["prompt_tokens"]))
        assert abs(p["prompt_tokens"] - length) <= 8, p  # the prompt was cut to the length asked
        points[(p["setting"], length)] = p
    assert set(points) == {("f16", 128), ("f16", 384), ("q8_0-fa", 128), ("q8_0-fa", 384)}
    for p in points.values():
        # The warm turn evaluated only the reply and the new user turn, not the dump again.
        assert 0 < p["warm_new_tokens"] < 100
        assert p["decode_tps"] > 0
    for setting in ("f16", "q8_0-fa"):
        assert points[(setting, 384)]["kv_mb"] > 2 * points[(setting, 128)]["kv_mb"]
    # q8_0 stores 8.5 bits a value against f16's 16.
    assert points[("q8_0-fa", 384)]["kv_mb"] < 0.6 * points[("f16", 384)]["kv_mb"]
