# Collect scenarios/*.yaml as pytest items, one per (scenario, gateway, FastTrack) cell.
pytest_plugins = ["harness.pytest_plugin"]
