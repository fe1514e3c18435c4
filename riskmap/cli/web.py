"""Commands of this area; see riskmap.cli."""
