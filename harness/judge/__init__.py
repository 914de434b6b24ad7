"""Judging: the verdict of a cell and the support policy (pure: no I/O beyond reading the policy file)."""
