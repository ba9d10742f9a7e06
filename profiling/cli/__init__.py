"""Front end: `python -m profiling` / `relu-lab` (main) and its subcommand modules."""
