"""Mistakes a type checker must catch: each line marked ``# error`` is one.

Not imported by the suite; ``tests/test_settings.py`` runs mypy on it and
checks that every marked line, and only those, is reported.
"""

from __future__ import annotations

import hubsig
from hubsig.asgi import HubSignatureMiddleware as ASGIMiddleware
from hubsig.fastapi import VerifiedDelivery
from hubsig.stores import MemoryStore
from hubsig.wsgi import HubSignatureMiddleware as WSGIMiddleware


async def asgi_app(scope: object, receive: object, send: object) -> None: ...


def wsgi_app(environ: object, start_response: object) -> list[bytes]:
    return []


ASGIMiddleware(asgi_app, secrett="s")  # error
ASGIMiddleware(asgi_app, secret="s", max_body_size="1MB")  # error
ASGIMiddleware(asgi_app, secret="s", scheme="github")  # error
WSGIMiddleware(wsgi_app, secret="s", paths=42)  # error
WSGIMiddleware(wsgi_app, secret="s", acknowledge_rejections="false")  # error
hubsig.webhook(secret=3.14)  # error
hubsig.webhook(secret="s", strict="yes")  # error
hubsig.webhook(secret="s", store=MemoryStore)  # error
hubsig.webhook(secret="s", dedupe={"lease": 60})  # error
VerifiedDelivery(secret="s", body_timeout="10")  # error
hubsig.WebhookConfig(secret="s", encoding="base-64")  # error


@hubsig.webhook  # error
def bare(payload: hubsig.EventsPayload) -> None: ...


ASGIMiddleware(asgi_app, secret="s", scheme=hubsig.GITHUB, body_timeout=5.0)
WSGIMiddleware(app=wsgi_app, secret=["old", "new"], paths=["/hook"], max_inflight_bytes=1 << 26)
hubsig.webhook(secret=lambda request: "s", store=MemoryStore())
VerifiedDelivery(config=hubsig.WebhookConfig(secret="s"))
