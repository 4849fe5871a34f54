"""Classifiers wrapped for ART, and fit/predict."""
