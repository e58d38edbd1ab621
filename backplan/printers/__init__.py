"""Terminal tables (rich) for plans and profiles."""
