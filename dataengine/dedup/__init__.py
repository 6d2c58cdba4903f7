"""Deduplication (exact and MinHash near-duplicates) and benchmark decontamination."""
