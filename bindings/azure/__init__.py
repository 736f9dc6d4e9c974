"""azure package."""
