"""Pure domain model: entities, value objects and rules. Standard library only."""
