"""Small dense matrices as lists of rows, for the plotting code (no numpy on the kiosk)."""
