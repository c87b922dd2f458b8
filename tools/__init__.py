"""turnout's own MCP tool servers (files, edit, tests), each run as a stdio subprocess."""
