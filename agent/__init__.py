"""The agent: MCP host, the agent loop, the run log and report, and the `turnout` CLI."""
