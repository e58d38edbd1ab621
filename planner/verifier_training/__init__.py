"""Training value heads: collect labelled rollouts, read hidden states, fit and calibrate."""
