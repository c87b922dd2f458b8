"""Evaluations of turnout's guards, one module each: `toolcalls` (BFCL tool calls with and
without the parser, repairs and grammar) and `loops` (the loop detector and repetition guard on
the shipped trace corpus). Their command is `turnout eval` (`agent/cli/eval.py`)."""
