"""The verifiers a user could pick instead of hubsig, each set up to check one valid delivery.

Every entry is built from the body and returns ``(verify_good, verify_tampered)``:
two calls that must succeed and fail respectively. ``checked`` runs both once
before anything is timed, so nothing is measured that does not really verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.bodies import SECRET

Check = Callable[[], object]
Peer = Callable[[bytes], tuple[Check, Check]]
TEXT_SECRET = SECRET.decode()


def floor(body: bytes) -> tuple[Check, Check]:
    """The least a correct verifier must do: one-shot HMAC, decode, constant-time compare."""
    header_hex = hmac.new(SECRET, body, "sha1").hexdigest()

    def check(data: bytes) -> Check:
        def run() -> None:
            if not hmac.compare_digest(
                hmac.digest(SECRET, data, "sha1"), bytes.fromhex(header_hex)
            ):
                raise ValueError("mismatch")

        return run

    return check(body), check(body + b"x")


def naive(body: bytes) -> tuple[Check, Check]:
    """The common hand-written form: hexdigest compared as strings."""
    header_hex = hmac.new(SECRET, body, hashlib.sha1).hexdigest()

    def check(data: bytes) -> Check:
        def run() -> None:
            if not hmac.compare_digest(
                hmac.new(SECRET, data, hashlib.sha1).hexdigest(), header_hex
            ):
                raise ValueError("mismatch")

        return run

    return check(body), check(body + b"x")


def cryptography_hmac(body: bytes) -> tuple[Check, Check]:
    """``cryptography``'s HMAC ``verify``, a new context per request."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.hmac import HMAC

    expected = hmac.digest(SECRET, body, "sha1")

    def check(data: bytes) -> Check:
        def run() -> None:
            mac = HMAC(SECRET, hashes.SHA1())  # noqa: S303 (what the sender signs with)
            mac.update(data)
            mac.verify(expected)

        return run

    return check(body), check(body + b"x")


def gidgethub(body: bytes) -> tuple[Check, Check]:
    """``gidgethub.sansio.validate_event`` with the same ``sha1=`` header hubsig receives."""
    from gidgethub import sansio

    signature = "sha1=" + hmac.new(SECRET, body, "sha1").hexdigest()

    def check(data: bytes) -> Check:
        return lambda: sansio.validate_event(data, signature=signature, secret=TEXT_SECRET)

    return check(body), check(body + b"x")


def stripe(body: bytes) -> tuple[Check, Check]:
    """``stripe.WebhookSignature.verify_header`` (sha256 over ``"{t}.{payload}"``)."""
    from stripe import WebhookSignature

    timestamp = int(time.time())
    signed = f"{timestamp}.".encode() + body
    header = f"t={timestamp},v1={hmac.new(SECRET, signed, 'sha256').hexdigest()}"

    def check(data: bytes) -> Check:
        return lambda: WebhookSignature.verify_header(data, header, TEXT_SECRET, tolerance=None)

    return check(body), check(body + b"x")


def slack_sdk(body: bytes) -> tuple[Check, Check]:
    """``slack_sdk.signature.SignatureVerifier.is_valid`` (sha256 over ``"v0:{t}:{body}"``)."""
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(TEXT_SECRET)
    timestamp = str(int(time.time()))
    signature = verifier.generate_signature(timestamp=timestamp, body=body)

    def check(data: bytes) -> Check:
        def run() -> None:
            if not verifier.is_valid(data, timestamp, signature):
                raise ValueError("mismatch")

        return run

    return check(body), check(body + b"x")


def _standard_webhooks_style(module: str, prefix: str) -> Peer:
    def peer(body: bytes) -> tuple[Check, Check]:
        webhook_class = __import__(module, fromlist=["Webhook"]).Webhook
        secret = prefix + base64.b64encode(SECRET).decode()
        webhook = webhook_class(secret)
        now = datetime.now(tz=UTC)
        signature = webhook.sign("msg_1", now, body.decode())
        names = ("webhook", "svix") if module.startswith("svix") else ("webhook",)
        headers = {}
        for name in names:
            headers[f"{name}-id"] = "msg_1"
            headers[f"{name}-timestamp"] = str(int(now.timestamp()))
            headers[f"{name}-signature"] = signature

        def check(data: bytes) -> Check:
            return lambda: webhook.verify(data, headers)

        return check(body), check(body + b"x")

    return peer


standardwebhooks = _standard_webhooks_style("standardwebhooks.webhooks", "whsec_")
svix = _standard_webhooks_style("svix.webhooks", "whsec_")

PEERS: dict[str, Peer] = {
    "standardwebhooks": standardwebhooks,
    "svix": svix,
    "stripe": stripe,
    "slack_sdk": slack_sdk,
    "gidgethub": gidgethub,
}


def checked(name: str, peer: Peer, body: bytes) -> Check:
    """The peer's check of the good delivery, after proving it refuses a tampered one."""
    good, tampered = peer(body)
    good()
    try:
        tampered()
    except Exception:
        return good
    raise AssertionError(f"{name} accepted a tampered delivery; it is not timed")
