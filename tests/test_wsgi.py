"""``hubsig.wsgi``: the WSGI middleware, as a WSGI server drives it.

The adapter suite (``tests/test_adapters.py``) runs the shared cases; these
are the WSGI middleware's own promises: the app reads the verified body from
``wsgi.input`` with its length, a failing app is answered with the 500
``EventsResponse``, the app's iterable is closed (PEP 3333), an asyncio
store is refused, and mistakes fail at construction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

import hubsig
from hubsig.testing import make_events, signed_request
from hubsig.wsgi import HubSignatureMiddleware
from tests.harness import Sent, call_wsgi

SECRET = "wsgi-secret"


def signed(body: bytes, path: str = "/hook") -> Sent:
    return Sent([body], dict(signed_request(body, SECRET).headers), path=path)


class Answer:
    """An app's iterable that records whether the server closed it."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield b"done"

    def close(self) -> None:
        self.closed = True


class App:
    """A WSGI app that reads its body by ``CONTENT_LENGTH`` and records what it got."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, bytes, Any]] = []
        self.answers: list[Answer] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        delivery = environ.get("hubsig.delivery")
        self.calls.append((environ["PATH_INFO"], body, delivery))
        if self.fail:
            raise RuntimeError("the app failed")
        start_response("200 OK", [("Content-Type", "text/plain")])
        self.answers.append(Answer())
        return self.answers[-1]


def test_the_app_reads_the_verified_body_and_its_delivery() -> None:
    body = make_events(4).to_json()
    app = App()
    reply = call_wsgi(HubSignatureMiddleware(app, secret=SECRET), signed(body))
    assert (reply.status, reply.body) == (200, b"done")
    [(path, read, delivery)] = app.calls
    assert (path, read) == ("/hook", body)
    assert isinstance(delivery, hubsig.Delivery)
    assert delivery.payload.entity_ids == hubsig.parse_events(body).entity_ids


def test_the_apps_iterable_is_closed_as_pep_3333_asks() -> None:
    app = App()
    call_wsgi(HubSignatureMiddleware(app, secret=SECRET), signed(make_events(1).to_json()))
    assert [answer.closed for answer in app.answers] == [True]


def test_an_unsigned_delivery_never_reaches_the_app_but_an_exempt_path_does() -> None:
    body = make_events(1).to_json()
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET, exempt=["/health"])
    refused = call_wsgi(middleware, Sent([body], {}, path="/hook"))
    assert refused.status == 401
    assert json.loads(refused.body)["status"]["message"].startswith("missing_signature")
    assert app.calls == []
    assert call_wsgi(middleware, Sent([body], {}, path="/health")).status == 200
    assert app.calls[0][:2] == ("/health", body)


def test_another_method_is_refused_with_405_signed_or_not() -> None:
    app = App()
    middleware = HubSignatureMiddleware(app, secret=SECRET)
    for sent in (signed(make_events(1).to_json()), Sent([b""], {})):
        sent.method = "GET"
        assert call_wsgi(middleware, sent).status == 405
    assert app.calls == []


def test_an_app_that_fails_gets_the_500_events_response() -> None:
    reply = call_wsgi(
        HubSignatureMiddleware(App(fail=True), secret=SECRET), signed(make_events(1).to_json())
    )
    assert reply.status == 500
    assert json.loads(reply.body)["status"]["code"] == 500


def test_an_asyncio_store_is_refused_at_construction() -> None:
    class AsyncStore:
        async def claim(self, keys: Any, lease: float, token: str) -> Any:
            raise AssertionError("never called")

        async def complete(self, keys: Any, retention: float, token: str) -> None:
            raise AssertionError("never called")

        async def release(self, keys: Any, token: str) -> None:
            raise AssertionError("never called")

    with pytest.raises(hubsig.ConfigurationError):
        HubSignatureMiddleware(App(), secret=SECRET, store=AsyncStore())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [{"secrett": SECRET}, {}, {"secret": SECRET, "max_body_size": -1}],
    ids=["misspelt", "no-secret", "negative-limit"],
)
def test_a_mistake_fails_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(hubsig.ConfigurationError):
        HubSignatureMiddleware(App(), **settings)


def test_a_chunked_body_under_a_server_that_cannot_read_it_is_411_not_an_empty_body() -> None:
    """PEP 3333: without a length and without ``wsgi.input_terminated``, reading past the end
    is not allowed; a chunked body there would read as empty and fail its signature as if
    tampered. It is refused saying what to do instead."""
    request = signed_request(make_events(1), SECRET)
    sent = Sent([request.body], dict(request.headers), declare_length=False)
    from tests.harness import wsgi_environ

    environ = wsgi_environ(sent, HTTP_TRANSFER_ENCODING="chunked")
    del environ["wsgi.input_terminated"]
    reached: list[bool] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        reached.append(True)
        start_response("200 OK", [])
        return [b""]

    answer = call_wsgi(HubSignatureMiddleware(app, secret=SECRET), sent, environ=environ)
    assert (answer.status, reached) == (411, [])
    assert json.loads(answer.body)["status"]["message"].startswith("length_required:")


def test_an_apps_200_is_replaced_when_its_transaction_cannot_commit() -> None:
    """With a lent transaction the app's writes go with the completion: if the commit fails
    the app's answer (not yet sent: WSGI sends nothing before the middleware returns) is
    replaced by a 500, and its body closed, so the sender retries."""
    import sqlite3
    import tempfile
    from pathlib import Path

    from hubsig.stores import SQLiteStore

    class _CommitFails(SQLiteStore):
        def commit_transaction(self, claims: Any, retention: float) -> None:
            self.abort_transaction(claims)  # what a failed COMMIT leaves: rolled back
            raise sqlite3.OperationalError("disk I/O error")

    closed: list[bool] = []

    class _Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    with tempfile.TemporaryDirectory() as folder:
        store = _CommitFails(Path(folder) / "events.db")

        def app(environ: Any, start_response: Any) -> Iterable[bytes]:
            delivery = hubsig.delivery_of(environ)
            store.transaction(delivery).execute("SELECT 1")
            start_response("200 OK", [("content-type", "text/plain")])
            return _Body([b"done"])

        request = signed_request(make_events(1), SECRET)
        sent = Sent([request.body], dict(request.headers))
        answer = call_wsgi(HubSignatureMiddleware(app, secret=SECRET, store=store), sent)
        store.close()
    assert answer.status == 500
    assert answer.body != b"done"
    assert closed == [True]
