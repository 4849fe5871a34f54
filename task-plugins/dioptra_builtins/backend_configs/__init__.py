"""Framework set-up (threads, seeds, determinism)."""
