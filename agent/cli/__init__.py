"""The `turnout` command line: `main.main` is the console script; one module per command."""
