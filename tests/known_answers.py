"""The known-answer vectors from ../shared/vectors, copied into tests/vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).parent / "vectors"
SEED_SECRET = "It's a Secret to Everybody"


def load_vectors(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))["cases"]
    return cases


def vector_body(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["body_b64"])


def vector_secret(case: dict[str, Any]) -> str | bytes:
    if "secret_b64" in case:
        return base64.b64decode(case["secret_b64"])
    secret: str = case["secret"]
    return secret
