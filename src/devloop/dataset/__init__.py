"""Training data from devloop eval runs: filtered, split, rendered trajectories (`devloop dataset`)."""
