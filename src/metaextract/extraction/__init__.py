"""One file to one Result: the per-file pipeline, its checks, and the contained extraction processes."""
