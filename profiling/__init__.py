"""ReLU Lab profiling: run specs, isolated timing workers, traces, analysis and the result store."""
