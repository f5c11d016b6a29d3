"""The Snakemake side and its instruments: the config (:mod:`.config`), the claims registry (:mod:`.registry`), a
job's set-up (:mod:`.job`), the CPU kernel pin (:mod:`.cpu_kernels`), the job server (:mod:`.jobserver`),
run statistics (:mod:`.jobstats`), cost estimates (:mod:`.cost`) and the regression check (:mod:`.regression`).
Imports neither torch nor matplotlib at module level where the DAG's parse reads it (config, registry,
cpu_kernels). Named ``pipeline``, not ``workflow``: Snakefiles have a global of that name."""
