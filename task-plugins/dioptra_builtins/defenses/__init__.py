"""Pre-processing and training defences."""
