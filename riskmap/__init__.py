"""riskmap: municipal risk maps of child labour (MIRTI-style small-area model)."""

__version__ = "0.1.0"
