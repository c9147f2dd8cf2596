"""The one exception family hubsig raises for a bad delivery.

Every error carries the HTTP status a receiver should answer and a stable
short ``code`` for logs and response bodies. Messages are written to be safe
to send back to the caller: they never contain a secret, an expected digest,
or the raw value of a hostile header.
"""

from __future__ import annotations

__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "ConfigurationError",
    "DisallowedAlgorithm",
    "IncompleteBody",
    "InvalidApiKey",
    "LengthRequired",
    "MalformedPayload",
    "MalformedRequest",
    "MalformedSignature",
    "MethodNotAllowed",
    "MissingSignature",
    "NoSecret",
    "NotVerified",
    "ReceiverBusy",
    "SignatureMismatch",
    "StoreUnavailable",
    "TooManyEvents",
    "UnsupportedAlgorithm",
    "WebhookError",
]


class WebhookError(Exception):
    """A delivery hubsig refuses; ``status`` and ``code`` say how to answer it.

    ``headers`` are extra response headers the answer needs (``Allow`` on a
    405, ``Retry-After`` on a 503); ``close_connection`` says the server
    should stop reading this connection (the rest of the body is not wanted).
    """

    status: int = 400
    code: str = "webhook_error"
    close_connection: bool = False

    def __init__(self, message: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


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
    close_connection = True


class MethodNotAllowed(WebhookError):
    """A guarded path was asked with a method it does not accept (only ``POST`` by default)."""

    status = 405
    code = "method_not_allowed"


class BodyTimeout(WebhookError):
    """The body did not arrive within the receiver's ``body_timeout``."""

    status = 408
    code = "body_timeout"
    close_connection = True


class LengthRequired(WebhookError):
    """A chunked body under a server that cannot read one: it must declare its length."""

    status = 411
    code = "length_required"


class MalformedRequest(WebhookError):
    """The request's framing is unreadable (e.g. a ``Content-Length`` that is not a number)."""

    status = 400
    code = "malformed_request"
    close_connection = True


class ReceiverBusy(WebhookError):
    """The bodies being received already fill this process's budget; retry later."""

    status = 503
    code = "receiver_busy"
    close_connection = True


class NotVerified(WebhookError):
    """A handler asked for the delivery of a request hubsig did not verify.

    Raised by ``delivery_of``; it means the routing let a request reach the
    handler without passing the guard (a path not listed in ``paths=``, a
    mount the middleware does not cover), so the handler must not run.
    """

    status = 401
    code = "not_verified"


class TooManyEvents(WebhookError):
    """The delivery holds more events than the receiver's ``max_events``."""

    status = 413
    code = "too_many_events"


class IncompleteBody(WebhookError):
    """The body ended before the length the request declared."""

    status = 400
    code = "incomplete_body"


class StoreUnavailable(Exception):
    """The delivery store could not be reached: the delivery must be retried, not guessed at.

    Not a refusal of the sender's delivery: the receiver answers 500 so that
    the sender retries, and nothing is lost or processed twice.
    """


class ConfigurationError(ValueError):
    """A receiver was configured in a way that can never work (e.g. an empty secret).

    Raised when the object is built, never per request, so a misconfiguration
    stops the app at start-up instead of failing every delivery.
    """
