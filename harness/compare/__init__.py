"""Comparing results: the CI gate, diff, merge of shards, and what varied over repeated runs."""
