"""Metrics: one per file, streaming states that merge across processes."""
