"""Building the policy's targets for one run: one `ChatModel` per target.

The runtimes themselves, and the reading of API keys from the environment, live in
`runtimes.registry.make_runtime`; this module adds what belongs to a run: one `RunBudget` shared
by all its targets (the policy's `[budgets]`, charged for local replies too), the in-process model standing in for every
`llama_cpp` target (one model is loaded per process), and the rule that a target which cannot be
built here, such as a cloud target without its key, is reported as unavailable rather than
failing the run: the router skips it, so a run with no key still works on the local model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from turnout.router.policy import Policy
from turnout.runtimes.base import ChatModel
from turnout.runtimes.errors import UsageError


def build_targets(
    policy: Policy,
    local: ChatModel,
    *,
    logger: Any | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, ChatModel], dict[str, str]]:
    """Models by target name, and why each target that is missing could not be built."""
    from turnout.runtimes.registry import make_runtime
    from turnout.runtimes.retry import Budgeted, BudgetPolicy, RunBudget

    budget = RunBudget(
        BudgetPolicy(
            max_tokens=policy.budgets.max_tokens_per_run,
            max_cost_usd=policy.budgets.max_cost_usd_per_run,
        )
    )
    models: dict[str, ChatModel] = {}
    unavailable: dict[str, str] = {}
    for name, target in policy.targets.items():
        if target.runtime == "llama_cpp":
            models[name] = Budgeted(local, budget, name)
            continue
        try:
            models[name] = make_runtime(name, target, budget=budget, logger=logger, environ=environ)
        except UsageError as exc:  # a missing key or model id: this target sits the run out
            unavailable[name] = str(exc)
    return models, unavailable
