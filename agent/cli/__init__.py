"""The `turnout` command line: `main.main` is the console script; one module per command."""

import os

# The user's OpenMP wait policy, for `turnout doctor`. turnout leaves it as it is: the default
# (threads spin between batches) decodes fastest for one model process, about 1.7x PASSIVE's
# speed here (docs/measurements.md), while two model processes at once need PASSIVE.
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
