"""What a request carries besides its object: who asks, and how strictly."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RequestContext:
    user: str = "system:admin"
    dry_run: bool = False
    # fieldValidation: Strict rejects unknown fields, Warn reports them, Ignore drops them silently.
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    # Set by internal callers (garbage collector, namespace controller) that skip webhooks.
    internal: bool = False

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
