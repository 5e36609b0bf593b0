"""Domain errors raised by the service's layers; server.py maps them onto the IDL's exceptions."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One located problem: entity index (0-based), TSV row (1-based, 0 if none), field, sentence."""
    field: str
    message: str
    index: int = -1
    row: int = 0


class MetadataError(Exception):
    """Base: a machine-readable code and a message a person can act on."""
    code = "error"
    refusal = ""  # set when an answer hides a refusal (NotFound for the unreadable): the audit log's reason

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class Invalid(MetadataError):
    code = "invalid"

    def __init__(self, message: str, problems: list[Problem] | None = None, code: str | None = None):
        super().__init__(message, code)
        self.problems = problems or []


class Missing(MetadataError):
    code = "not_found"


class Clash(MetadataError):
    code = "conflict"


class Denied(MetadataError):
    code = "forbidden"


class BadToken(MetadataError):
    code = "unauthenticated"


class StorageFull(MetadataError):
    """A write failed for lack of disk space; nothing of it was written."""
    code = "storage_full"


@dataclass
class ProblemList:
    """Collects problems across a batch, so one submission reports all of them at once."""
    items: list[Problem] = field(default_factory=list)

    def add(self, field_name: str, message: str, index: int = -1, row: int = 0) -> None:
        self.items.append(Problem(field_name, message, index, row))

    def raise_if_any(self, summary: str) -> None:
        if self.items:
            raise Invalid(f"{summary}: {len(self.items)} problem(s); nothing was written", self.items)
