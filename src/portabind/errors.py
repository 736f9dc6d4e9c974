"""One error hierarchy for portabind.

```
PortabindError
├── UserError                 — something the user can fix; the CLI prints it and exits 2
│   ├── ComponentError        — a component YAML is wrong (file, component, field)
│   │   └── SecretError       — a secretKeyRef cannot be resolved
│   ├── AppError              — the app module or a handler is wrong
│   ├── UnsupportedOperation  — an output binding was asked for an operation it lacks
│   └── BuildError            — the target cannot express what the components ask for
└── BindingError              — an output binding call failed at run time
    └── NotFound              — the object/message the call names does not exist
```

Messages say what was expected, what was found, where, and how to fix it.
"""

from __future__ import annotations

# `import portabind` loads this module: no `typing` import for the name alone, which is
# what type checkers look for.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from portabind.events import BindingResponse


#: The most characters of a name or value a message shows; longer ones are cut in the middle.
SHOWN_CHARACTERS = 80
#: The most problems one message lists; the rest are counted.
SHOWN_PROBLEMS = 20


def shorten(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`text`, or its start and end around the number of characters left out, so a
    message stays one short line whatever a file holds."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}…({len(text) - 2 * half:,} characters)…{text[-half:]}"


class PortabindError(Exception):
    """Base class of every error portabind raises on purpose."""


class UserError(PortabindError):
    """An error in the user's app, components or command line."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ComponentError(UserError):
    """A component document is malformed, names an unknown type or has a bad field."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        component: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        # pathlib here, not at the top: `import portabind` loads this module, and only a
        # component error made from a file needs it.
        from pathlib import Path

        self.file = Path(file) if file is not None else None
        self.component = component
        self.field = field
        self.detail = message
        where = ", ".join(
            part
            for part in (
                str(self.file) if self.file else None,
                f"component {shorten(component)!r}" if component else None,
                f"field {shorten(field)!r}" if field else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message, hint=hint)


class SecretError(ComponentError):
    """A `secretKeyRef` names a store or secret that cannot be resolved."""


class AppError(UserError):
    """The app cannot be imported, or a handler names a component that does not exist."""


class UnsupportedOperation(UserError):
    """An output binding was invoked with an operation it does not support."""


class BuildError(UserError):
    """A target cannot express what the components ask for."""


class BindingError(PortabindError):
    """An output binding call failed (the service answered with an error). `response` is
    what the service answered where that carries metadata (an HTTP status and headers):
    Dapr returns the response metadata with the error."""

    def __init__(
        self, binding: str, operation: str, message: str, response: BindingResponse | None = None
    ) -> None:
        self.binding = binding
        self.operation = operation
        self.detail = message
        self.response = response
        super().__init__(f"error invoking output binding {binding} ({operation}): {message}")


class NotFound(BindingError):
    """The object, blob or key named by the request does not exist."""


class ValidationFailed(UserError):
    """Several user errors found in one pass; each is listed."""

    def __init__(self, errors: list[UserError]) -> None:
        self.errors = errors
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        listed = [f"- {error.render()}" for error in errors[:SHOWN_PROBLEMS]]
        if len(errors) > SHOWN_PROBLEMS:
            listed.append(f"- … and {len(errors) - SHOWN_PROBLEMS:,} more")
        super().__init__(f"{count}:\n" + "\n".join(listed))
