"""The one error type a request can end in: an HTTP status, a short machine-readable kind and a
sentence naming the problem and the fix (rendered as ``{"error": kind, "detail": message}``)."""
from typing import Dict, Optional


class RequestError(Exception):
    """A request the server refuses or cannot answer.

    Args:
        status: HTTP status code (4xx: the client's request; 5xx: the server's state).
        kind: short name, also the ``kind`` label of the ``errors_total`` metric.
        message: what is wrong and what to do about it.
        headers: extra response headers (``Retry-After`` for 503).
    """

    def __init__(self, status: int, kind: str, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        return dict(error=self.kind, detail=self.message)
