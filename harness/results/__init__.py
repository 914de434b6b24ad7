"""The result model every report reads (``RunResult.to_json`` is ``matrix.json``)."""
