"""How a queued job reaches a worker: embedded local processes, or Redis + RQ."""
