"""The Faust application: ingest agents, tables, web views, and their pure helpers."""
