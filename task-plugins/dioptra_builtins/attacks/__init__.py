"""Evasion, poisoning and inference attacks."""
