"""The networked runtimes: models reached over HTTP, each behind the one retry layer.

- `openai_rt.py`: OpenAI's chat completions (official SDK).
- `anthropic_rt.py`: Anthropic's messages API (official SDK).
- `openai_compat.py`: any OpenAI-compatible server (Ollama, vLLM, llama.cpp server, LM Studio).
- `wire.py`: what the three share: the constructor's retry layer and SDK options, a streamed
  reply assembled, native calls validated, SDK errors mapped to transient or permanent.
- `retry.py`: bounded attempts, Retry-After, the circuit breaker, run budgets.
- `registry.py`: a runtime from a target's settings; the one place that reads API keys.
"""
