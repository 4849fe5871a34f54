"""Seeding and random draws."""
