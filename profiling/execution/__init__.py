"""Execution: the runner and the isolated worker processes it drives."""
