"""Customers in the worker: the state writer, the survey desk, value bands, their snapshot
and revaluation."""
