"""The one exception family hubsig raises for a bad delivery.

Every error carries the HTTP status a receiver should answer and a stable
short ``code`` for logs and response bodies. Messages are written to be safe
to send back to the caller: they never contain a secret, an expected digest,
or the raw value of a hostile header.
"""

from __future__ import annotations

__all__ = [
    "BodyTooLarge",
    "ConfigurationError",
    "DisallowedAlgorithm",
    "IncompleteBody",
    "InvalidApiKey",
    "MalformedPayload",
    "MalformedSignature",
    "MissingSignature",
    "NoSecret",
    "SignatureMismatch",
    "UnsupportedAlgorithm",
    "WebhookError",
]


class WebhookError(Exception):
    """A delivery hubsig refuses; ``status`` and ``code`` say how to answer it."""

    status: int = 400
    code: str = "webhook_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingSignature(WebhookError):
    """The request carries no signature header (or an empty one)."""

    status = 401
    code = "missing_signature"


class MalformedSignature(WebhookError):
    """The signature header is not ``<algorithm>=<digest>`` of the right length."""

    status = 401
    code = "malformed_signature"


class UnsupportedAlgorithm(WebhookError):
    """The header names an algorithm hubsig does not implement (e.g. ``md5``)."""

    status = 401
    code = "unsupported_algorithm"


class DisallowedAlgorithm(UnsupportedAlgorithm):
    """The algorithm is known but this receiver's allow-list refuses it."""

    code = "disallowed_algorithm"


class SignatureMismatch(WebhookError):
    """No configured secret produces the received digest for this body."""

    status = 401
    code = "signature_mismatch"


class NoSecret(WebhookError):
    """The secret resolver has no secret for this request (e.g. an unknown channel)."""

    status = 401
    code = "no_secret"


class InvalidApiKey(WebhookError):
    """The ``x-api-key`` header is missing or matches no configured key."""

    status = 401
    code = "invalid_api_key"


class MalformedPayload(WebhookError):
    """The verified body is not a well-formed events payload."""

    status = 400
    code = "malformed_payload"


class BodyTooLarge(WebhookError):
    """The body is larger than the receiver's configured limit."""

    status = 413
    code = "body_too_large"


class IncompleteBody(WebhookError):
    """The body ended before the length the request declared."""

    status = 400
    code = "incomplete_body"


class ConfigurationError(ValueError):
    """A receiver was configured in a way that can never work (e.g. an empty secret).

    Raised when the object is built, never per request, so a misconfiguration
    stops the app at start-up instead of failing every delivery.
    """
