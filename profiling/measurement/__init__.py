"""Measurement: the timing loop, statistics of samples, the memory roof, noise verdicts, the machine's environment."""
