"""The address book's import pipeline."""
