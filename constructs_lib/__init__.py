"""Reusable L3 constructs, one module per logical unit (mirrored by ``lambdas/<unit>``)."""
