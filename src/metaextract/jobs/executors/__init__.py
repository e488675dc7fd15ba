"""Where a submission's files are read: here (local) or on Dask (a local cluster, a scheduler, SLURM)."""
