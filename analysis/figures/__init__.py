"""Publication figures drawn from the stored result tables."""
