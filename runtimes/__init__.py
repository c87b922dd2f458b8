"""Runtimes: the shared vocabulary (`base`) and the models that answer chat requests."""
