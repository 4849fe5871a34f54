"""Artifact upload/download and safe archive handling."""
