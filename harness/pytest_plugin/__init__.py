"""The pytest plugin (registered through the ``pytest11`` entry point): scenario files as test items."""
