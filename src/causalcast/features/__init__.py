"""Causal features: indicators that see only the past, and the one function that looks ahead
(targets)."""
