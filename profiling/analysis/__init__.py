"""Analyzers: one module per question, each pure functions from Trace.events to DataFrames/dicts."""
