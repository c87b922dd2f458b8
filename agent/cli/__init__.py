"""The `turnout` command line: `main.main` is the console script; one module per command."""

import os

# The user's OpenMP wait policy, for `turnout doctor`. turnout leaves it as it is: the default
# (threads spin between batches) decodes fastest for one model process, about 1.7x PASSIVE's
# speed here (docs/measurements.md); two turnout processes take turns at the model instead
# (runtimes/local/cputurn.py), so neither spins against the other.
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
