"""Ingest: the input batch parsed and validated, dead letters written exactly once."""
