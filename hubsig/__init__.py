"""hubsig: receive signed webhooks (``X-Hub-Signature``) safely and fast.

This package's top level is the framework-agnostic core: signature
verification, payload models, B3 trace context and the receiver's
configuration. ``import hubsig`` loads no web framework, no asyncio and no
sqlite3: ``webhook`` and ``WebhookEndpoint`` (which need asyncio) are loaded
when first used, and the adapters live in their own modules
(``hubsig.asgi``, ``hubsig.wsgi``, ``hubsig.django``, ...). The
implementation modules are private (``hubsig._config``, ...); what is
public is exactly ``__all__`` here and in the adapter modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubsig._algorithms import ALGORITHMS, Algorithm, DigestEncoding
from hubsig._config import RequestView, WebhookConfig, WebhookSettings
from hubsig._dedupe import AsyncDeliveryStore, Claim, DedupePolicy, DeliveryStore
from hubsig._delivery import Delivery
from hubsig._delivery_of import delivery_of
from hubsig._headers import Headers
from hubsig._lazy import lazy_attributes
from hubsig._models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType
from hubsig._payload import parse_events
from hubsig._response import EventsResponse, events_response, parse_events_response
from hubsig._scheme import GENESYS_CLOUD, GENESYS_MULTICLOUD, GITHUB, WEBSUB, Scheme
from hubsig._secrets import Secret, Secrets, SecretWhitespaceWarning
from hubsig._signature_header import parse_signature_header
from hubsig._trace import TraceContext, TraceIdFilter, current_trace, use_trace
from hubsig._verifier import IncrementalVerification, Verification, Verifier, sign, verify
from hubsig.errors import (
    BodyTimeout,
    BodyTooLarge,
    ConfigurationError,
    DisallowedAlgorithm,
    IncompleteBody,
    InvalidApiKey,
    LengthRequired,
    MalformedPayload,
    MalformedRequest,
    MalformedSignature,
    MethodNotAllowed,
    MissingSignature,
    NoSecret,
    NotVerified,
    ReceiverBusy,
    SignatureMismatch,
    SinkUnavailable,
    StoreUnavailable,
    TooManyEvents,
    UnsupportedAlgorithm,
    WebhookError,
)

if TYPE_CHECKING:
    from hubsig._endpoint import WebhookEndpoint, webhook

__getattr__ = lazy_attributes(
    __name__, {"webhook": "hubsig._endpoint", "WebhookEndpoint": "hubsig._endpoint"}
)


__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "GENESYS_CLOUD",
    "GENESYS_MULTICLOUD",
    "GITHUB",
    "WEBSUB",
    "Algorithm",
    "AsyncDeliveryStore",
    "BodyTimeout",
    "BodyTooLarge",
    "Claim",
    "ConfigurationError",
    "DedupePolicy",
    "Delivery",
    "DeliveryStore",
    "DigestEncoding",
    "DisallowedAlgorithm",
    "Entity",
    "Event",
    "EventType",
    "EventsPayload",
    "EventsResponse",
    "Headers",
    "IncompleteBody",
    "IncrementalVerification",
    "InteractionSubtype",
    "InvalidApiKey",
    "LengthRequired",
    "MalformedPayload",
    "MalformedRequest",
    "MalformedSignature",
    "MediaType",
    "MethodNotAllowed",
    "MissingSignature",
    "NoSecret",
    "NotVerified",
    "ReceiverBusy",
    "RequestView",
    "Scheme",
    "Secret",
    "SecretWhitespaceWarning",
    "Secrets",
    "SignatureMismatch",
    "SinkUnavailable",
    "StoreUnavailable",
    "TooManyEvents",
    "TraceContext",
    "TraceIdFilter",
    "UnsupportedAlgorithm",
    "Verification",
    "Verifier",
    "WebhookConfig",
    "WebhookEndpoint",
    "WebhookError",
    "WebhookSettings",
    "__version__",
    "current_trace",
    "delivery_of",
    "events_response",
    "parse_events",
    "parse_events_response",
    "parse_signature_header",
    "sign",
    "use_trace",
    "verify",
    "webhook",
]
