"""The night conductor: per-night bookkeeping, the night report, the end-of-night job."""
