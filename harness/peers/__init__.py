"""Real webserver builds: install and launch them, identify their generation, the findings, the census."""
