"""Click commands defined outside cli.py; cli.main attaches them."""
