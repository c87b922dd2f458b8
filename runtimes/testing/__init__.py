"""Test doubles, part of the product so that users can test agents and policies offline.

- `fake.py`: `ScriptedModel` (replies from a script of raw texts, parsed like a model's),
  `FunctionModel` (replies from a Python function, structured), `FailingModel` (a target
  that is down).
- `fake_upstream.py`: `FakeUpstream`, a fake OpenAI/Anthropic server on a local port, with
  faults injected at the transport level.
"""
