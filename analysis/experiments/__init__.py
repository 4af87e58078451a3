"""Experiments: each is a function from a frozen config dataclass to a tidy DataFrame."""
