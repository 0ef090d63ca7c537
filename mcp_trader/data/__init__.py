"""Market data: sources, the fallback chain, resampling and quality checks."""
