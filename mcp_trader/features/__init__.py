"""Features: single-asset indicators, cross-asset confluence and the causal dataset builder."""
