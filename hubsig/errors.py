"""Every exception hubsig defines, and the one family it raises for a bad delivery.

Every ``WebhookError`` carries the HTTP status a receiver should answer and
a stable short ``code`` for logs and response bodies. Messages are written
to be safe to send back to the caller: they never contain a secret, an
expected digest, or the raw value of a hostile header. The tree::

    Exception
    ├── WebhookError                 a delivery refused: answer its status
    │   ├── MissingSignature         401  no signature header
    │   ├── MalformedSignature       401  a header that is not <algorithm>=<digest>
    │   ├── UnsupportedAlgorithm     401  an algorithm hubsig does not know
    │   │   └── DisallowedAlgorithm  401  one the scheme does not allow (a downgrade)
    │   ├── SignatureMismatch        401  no secret signs these bytes so
    │   ├── NoSecret                 401  the resolver has no secret for this request
    │   ├── InvalidApiKey            401  x-api-key missing or wrong
    │   ├── NotVerified              401  delivery_of() on a request hubsig did not verify
    │   ├── MalformedPayload         400  the verified body is not an events payload
    │   ├── MalformedRequest         400  unreadable framing, a control character in the path
    │   ├── MethodNotAllowed         405
    │   ├── BodyTimeout              408
    │   ├── LengthRequired           411
    │   ├── BodyTooLarge             413
    │   ├── TooManyEvents            413
    │   ├── IncompleteBody           400  the body ended before its Content-Length
    │   ├── ReceiverBusy             503  the in-flight body budget is spent
    │   └── SinkUnavailable          503  the sink could not make the events durable
    ├── StoreUnavailable             the store cannot be reached: answer 500, the sender retries
    ├── ClaimLost                    another attempt took a transaction's claims: roll back
    ├── PublishUnconfirmed           a sink's engine did not confirm the events durable: 503
    ├── ClientDisconnected           the client went away mid-body: nothing to answer
    ├── ReceiveFailed                the framework refused to read the body: its answer
    ├── JournalMismatch              hubsig serve's --out holds lines its store never wrote
    ├── UsageError                   the hubsig command was called wrongly (exit status 2)
    ├── ConfigurationError (ValueError)      a setting that can never work: raised at start-up
    ├── HandlerAnswerError (TypeError)       a handler returned something that is not an answer
    └── SecretWhitespaceWarning (UserWarning)  a secret with the look of a copied newline

One exception lives with its framework: ``hubsig.fastapi.DeliveryRejected``
(and its ``DeliveryAcknowledged``) is a Starlette ``HTTPException``, so that
FastAPI answers it.
"""

from __future__ import annotations

__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "ClaimLost",
    "ClientDisconnected",
    "ConfigurationError",
    "DisallowedAlgorithm",
    "HandlerAnswerError",
    "IncompleteBody",
    "InvalidApiKey",
    "JournalMismatch",
    "LengthRequired",
    "MalformedPayload",
    "MalformedRequest",
    "MalformedSignature",
    "MethodNotAllowed",
    "MissingSignature",
    "NoSecret",
    "NotVerified",
    "PublishUnconfirmed",
    "ReceiveFailed",
    "ReceiverBusy",
    "SecretWhitespaceWarning",
    "SignatureMismatch",
    "SinkUnavailable",
    "StoreUnavailable",
    "TooManyEvents",
    "UnsupportedAlgorithm",
    "UsageError",
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


class SinkUnavailable(WebhookError):
    """The sink did not confirm the events durable (its engine is down or slow); the
    claims were given back, and the sender is asked to retry."""

    status = 503
    code = "sink_unavailable"


class NotVerified(WebhookError):
    """A handler asked for the delivery of a request hubsig did not verify.

    Raised by ``delivery_of``; it means the routing let a request reach the
    handler without passing the guard (a route listed in ``exempt=``, a
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


class ClaimLost(Exception):
    """A transaction's claims were taken by another attempt before it committed:
    the transaction is rolled back, so only the other attempt's work counts."""


class PublishUnconfirmed(Exception):
    """A sink's engine (Redis, JetStream, a Celery broker) did not confirm every event
    durable: the receiver gives the claims back and answers 503, so the sender retries.
    The message names the cause, never a credential."""


class ClientDisconnected(Exception):
    """The client went away before the whole body arrived; nothing is left to answer."""


class ReceiveFailed(Exception):
    """The server's or the framework's own read of the body raised (its ``__cause__``), as
    a framework's body limit does: not a check of hubsig's that failed, so the adapter
    raises the cause again for the framework to answer (its 413), never hubsig's 500."""


class JournalMismatch(Exception):
    """The JSON Lines file holds lines this journal never wrote (it came from another store)."""


class HandlerAnswerError(TypeError):
    """A handler returned something that is not an answer: the delivery fails, loudly."""


class UsageError(Exception):
    """A problem with how the ``hubsig`` command was called (exit status 2)."""


class SecretWhitespaceWarning(UserWarning):
    """A secret starts or ends with whitespace, the usual sign of a copied newline."""
