"""`python -m turnout.agent.cli`: the `turnout` command."""

import sys

from turnout.agent.cli.main import main

sys.exit(main())
