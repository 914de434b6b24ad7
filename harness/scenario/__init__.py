"""The scenario format: model, loader and matchers. Knows nothing of I/O beyond reading the file."""
