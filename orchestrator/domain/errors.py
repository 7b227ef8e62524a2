"""Errors the engine and its ports speak in. Adapters turn their own failures into these."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base of every error this project raises on purpose."""


class NotFoundError(OrchestratorError):
    """A session, project or PR that does not exist."""


class ConflictError(OrchestratorError):
    """A request that contradicts the current state (e.g. restoring a live session)."""


class InvalidInputError(OrchestratorError):
    """Input rejected before it could reach the engine; the message names what is wrong."""


class ConfigError(InvalidInputError):
    """A configuration value that cannot be used; the message names the key."""


class StoreError(OrchestratorError):
    """A write the store refused (constraint, foreign key); nothing of the unit was kept."""


class OverloadedError(OrchestratorError):
    """A session's mailbox is full: the caller should back off and retry."""


class TransientError(OrchestratorError):
    """A failure worth retrying (timeouts, a busy peer, a 5xx)."""


class DeliveryError(OrchestratorError):
    """A message or notification that could not be delivered and should not be retried."""


class ProbeError(TransientError):
    """A liveness probe could not tell (tmux error, timeout): never read as dead."""


class StorageUnavailableError(StoreError, TransientError):
    """The database could not be read or written (disk full, I/O error, a damaged or
    read-only file): the write was not made, and the same request may succeed once the
    storage recovers.

    A ``StoreError``, so every caller that copes with a refused write copes with this one;
    a ``TransientError``, because retrying later is the right answer. Whoever maps errors
    to answers must test for it before ``StoreError`` (a refusal that retrying will not
    change)."""


class DatabaseDamagedError(OrchestratorError):
    """The database file cannot be used as it is (not a database, truncated, failing its
    integrity check, or emptied beside a non-empty write-ahead log). The message is one
    line naming the file and what to do; start-up stops."""
