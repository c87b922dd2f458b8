"""The `turnout` command line: `main.main` is the console script; one module per command."""

import os

# What the user's environment said, before the line below: `turnout doctor` reports it.
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")

# llama.cpp's OpenMP threads spin between batches by default, and two model processes on the
# same cores (a chat and a run, a bench beside a test) then stall each other several times
# over (docs/measurements.md). Waiting passively costs one process almost nothing. OpenMP reads
# this once, when llama.cpp loads, so it is set here, before any command imports it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
