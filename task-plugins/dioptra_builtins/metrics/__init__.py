"""Distance, performance and robustness metrics."""
