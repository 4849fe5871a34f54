"""Dataset loaders, writers and array helpers (images are N,C,H,W float32 in [0, 1])."""
