"""Workflows that compose several packages: export + forward check, end-to-end validation, keep-ratio sweeps."""
