"""Platform events for tests, like `sam local generate-event`: `aws` (Lambda event dicts),
`azure` (`azure.functions` trigger objects), `gcp` (CloudEvents and Flask requests).

Each module imports its platform's library only when a function of it is called."""

from portabind.testing.events import aws, azure, gcp

__all__ = ["aws", "azure", "gcp"]
