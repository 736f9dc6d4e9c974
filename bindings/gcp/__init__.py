"""gcp package."""
