"""Analysis: verdicts and comparisons drawn from measurements and traces (fusion, run-to-run compare, activation audit, trace diff, activation statistics)."""
