"""Mutations, one module per area; each takes an input type and returns the changed object."""
