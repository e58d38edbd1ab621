"""backplan planner: profiler, capacity model, TCO, recommender and the CLI."""
