"""Typed errors raised by the Polygon client and the response parsers.

Messages are built from the endpoint *path* and from Polygon's own error text only. The API key
travels in the ``Authorization`` header, never in a URL, and the client redacts it from any
Polygon text it quotes, so no message, repr or log line built from these errors can carry it.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[PolygonError], args: tuple[Any, ...], state: dict[str, Any]) -> PolygonError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class PolygonError(Exception):
    """Base of everything the Polygon source raises.

    ``endpoint`` is the request path without its query, ``status_code`` the HTTP status when one
    was received, and ``polygon_message`` Polygon's own explanation (``error`` or ``message``).
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status_code: int | None = None,
        polygon_message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code
        self.polygon_message = polygon_message
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors break the default exception pickling, and errors cross process
        # boundaries (multiprocess executors, pytest-xdist).
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class PolygonAuthError(PolygonError):
    """HTTP 401: the API key is missing, unknown or revoked."""


class PolygonNotEntitledError(PolygonError):
    """HTTP 403: the key is valid but the plan does not include this data or timeframe."""


class PolygonNotFound(PolygonError):
    """HTTP 404. Ticker-level endpoints turn this into ``None`` and count it instead of raising."""


class PolygonBadRequest(PolygonError):
    """HTTP 400: Polygon rejected a parameter; ``polygon_message`` says which."""


class PolygonResponseError(PolygonError):
    """The response cannot be trusted: invalid JSON, wrong shape, unexpected status, or a
    ``next_url`` that points somewhere the client refuses to send the key."""


class PolygonRetryExhausted(PolygonError):
    """Every attempt failed with a retryable condition (429, 5xx, timeout, connection error)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        attempts: int,
        last_status: int | None,
        last_failure: str,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status_code=last_status)
        self.attempts = attempts
        self.last_status = last_status
        self.last_failure = last_failure


class PolygonSchemaError(PolygonError):
    """A row lacks a required field, or a field has a type the parser cannot accept."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        field: str,
        row_index: int,
        ticker: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.field = field
        self.row_index = row_index
        self.ticker = ticker
