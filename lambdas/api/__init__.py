"""The jobs API: upload jobs over an HTTP API (``handler.py``), their models and settings."""
