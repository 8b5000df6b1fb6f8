"""The yearly flow graph per stream (networkx), fate attribution and indicator formulas (indicators.md)."""
