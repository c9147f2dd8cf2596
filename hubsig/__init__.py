"""hubsig: receive signed webhooks (``X-Hub-Signature``) safely and fast.

This package's top level is the framework-agnostic core: signature
verification, payload models and B3 trace context. It imports no web
framework; the adapters live in their own modules.
"""

from hubsig.access import delivery_of
from hubsig.algorithms import ALGORITHMS, Algorithm, DigestEncoding
from hubsig.config import RequestView, WebhookConfig
from hubsig.dedupe import AsyncDeliveryStore, Claim, DedupePolicy, DeliveryStore, StoreUnavailable
from hubsig.endpoint import WebhookEndpoint, webhook
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
    UnsupportedAlgorithm,
    WebhookError,
)
from hubsig.headers import Headers
from hubsig.keys import Secret, Secrets, SecretWhitespaceWarning
from hubsig.models import Entity, Event, EventsPayload, EventType, InteractionSubtype, MediaType
from hubsig.payload import parse_events
from hubsig.receiver import Delivery
from hubsig.response import EventsResponse, events_response, parse_events_response
from hubsig.scheme import GENESYS_CLOUD, GENESYS_MULTICLOUD, GITHUB, WEBSUB, Scheme
from hubsig.signature_header import parse_signature_header
from hubsig.trace import TraceContext, TraceIdFilter, current_trace, use_trace
from hubsig.verifier import IncrementalVerification, Verification, Verifier, sign, verify

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
    "StoreUnavailable",
    "TraceContext",
    "TraceIdFilter",
    "UnsupportedAlgorithm",
    "Verification",
    "Verifier",
    "WebhookConfig",
    "WebhookEndpoint",
    "WebhookError",
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
