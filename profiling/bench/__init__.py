"""Benchmarks of the tool itself: `make bench`, `make bench-timeit`, `make bench-traces`."""
