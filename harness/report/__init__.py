"""Report writers. Each reads only the finished result document (``matrix.json``'s content)."""
