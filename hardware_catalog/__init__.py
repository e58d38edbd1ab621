"""Hardware catalogue: YAML data and its schema (filled by the planner issue)."""
