"""The in-process runtime: a GGUF model through llama.cpp, in this process.

- `llama_cpp.py`: `LlamaCppModel`, the `ChatModel` (the text tool protocol, the grammar, the
  repetition guard, parallel sampled candidates).
- `speculative.py`: turnout's own decode loop on llama.cpp's low-level API (draft, verify,
  parallel sequences) and the draft-model drafter, which is such a loop itself.
- `drafters.py`: the `Drafter` protocol and the model-free drafters (suffix, none).
- `costcurve.py`: what a batch of k rows costs on this machine, measured once per model.
- `repetition.py`: the guard that ends a reply which has become a repeated unit.
- `models.py`: the model catalog, its pinned files and the installer.
"""
