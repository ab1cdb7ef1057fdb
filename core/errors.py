"""Domain errors. The web layer maps each to one HTTP status in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain logic raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class InvalidData(DomainError):
    """Input that is well-formed but breaks a rule (an unknown reference, say)."""

    code = "invalid"


class Forbidden(DomainError):
    code = "forbidden"


class InvalidTransition(Conflict):
    """A status change the lifecycle does not allow from the current status."""

    code = "invalid_transition"

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message, {"allowed": allowed})
        self.allowed = allowed


class PreconditionFailed(DomainError):
    code = "precondition_failed"


class PreconditionRequired(DomainError):
    """A write that must name the version it changes (If-Match) and did not."""

    code = "precondition_required"
