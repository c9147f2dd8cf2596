"""Apps whose hubsig settings are wrong, for the start-up tests: each server must refuse them."""

from __future__ import annotations

from fastapi import FastAPI

from hubsig.asgi import HubSignatureMiddleware

# Starlette builds its middleware lazily, at the lifespan start-up, inside the server.
misspelt = FastAPI()
misspelt.add_middleware(HubSignatureMiddleware, secrett="s")  # type: ignore[call-arg]
