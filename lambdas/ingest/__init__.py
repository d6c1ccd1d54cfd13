"""Ingest unit: find new openly licensed clips and land them, with provenance, in the raw zone."""
