"""The engine: starts the actors, runs scenarios in cells, emits typed events and the result model."""
