"""Mutation testing: the catalogue of deviant gateways and the run that scores the suite against them."""
