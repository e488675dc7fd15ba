"""The workflow step's jobs: the seed's step API, submissions, progress, and the executors."""
