"""portabind: Dapr bindings for functions-as-a-service.

Importing this package imports no cloud SDK; each binding's SDK is imported when a
component of that type is used.
"""

from portabind.app import App, Output
from portabind.errors import (
    BindingError,
    ComponentError,
    NotFound,
    PortabindError,
    UnsupportedOperation,
    UserError,
)
from portabind.events import BindingEvent, BindingResponse, Metadata

__all__ = [
    "App",
    "BindingError",
    "BindingEvent",
    "BindingResponse",
    "ComponentError",
    "Metadata",
    "NotFound",
    "Output",
    "PortabindError",
    "UnsupportedOperation",
    "UserError",
]
__version__ = "0.1.0"
