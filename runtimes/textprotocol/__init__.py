"""The text tool protocol: how a model that has no native tool calling is offered tools and how
its calls are read back, in one place.

The tools are described in the system prompt as compact signatures; the model replies with one
call as JSON in a ```json fence, `{"name": "<tool>", "arguments": {...}}`; earlier calls are
replayed in that same form and tool results come back as user turns.

- `render.py`: the conversation and the tools rendered in the protocol (`to_text_protocol`).
- `parse.py`: calls read out of what models really emit, repaired where the meaning is not in
  doubt, validated against the tools' schemas (`parse_tool_calls`, `validate_call`).
- `grammar.py`: decoding constrained to the protocol, a GBNF grammar from the tools' schemas
  (`compiled_grammar`).

The in-process runtime speaks it always, an OpenAI-compatible server when it rejects native
tools; every runtime reads replies with `parse.py`. It imports only `runtimes/base.py` and
`runtimes/errors.py`.
"""
