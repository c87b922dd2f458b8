"""Small data structures for the template engine's parser."""
