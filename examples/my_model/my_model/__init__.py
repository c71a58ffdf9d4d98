"""A template fpdm-bench model package (see README.md)."""
