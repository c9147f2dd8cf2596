"""Signature verification per body size: hubsig against the floor, the naive form,
``cryptography`` and the peer libraries; and streaming verification against the floor."""

from __future__ import annotations

from typing import Any

import hubsig
from benchmarks import peers
from benchmarks.bodies import SECRET, events_body
from benchmarks.timing import per_call

SIZES = (512, 4096, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024)
CHUNKS = (16 * 1024, 64 * 1024)
# The hash each peer's scheme uses; hubsig is timed with the same one against it.
PEER_HASH = {
    "standardwebhooks": "sha256",
    "svix": "sha256",
    "stripe": "sha256",
    "slack_sdk": "sha256",
    "gidgethub": "sha1",
}


def hubsig_check(body: bytes, algorithm: str) -> peers.Check:
    verifier = hubsig.Verifier(SECRET)
    header = hubsig.sign(body, SECRET, algorithm)
    verifier.verify(body, header)
    return lambda: verifier.verify(body, header)


def by_size(sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        body = events_body(size)
        candidates: dict[str, peers.Check] = {
            "floor": peers.checked("floor", peers.floor, body),
            "hubsig sha1": hubsig_check(body, "sha1"),
            "hubsig sha256": hubsig_check(body, "sha256"),
            "naive hexdigest": peers.checked("naive", peers.naive, body),
            "cryptography HMAC": peers.checked("cryptography", peers.cryptography_hmac, body),
        }
        for name, peer in peers.PEERS.items():
            candidates[name] = peers.checked(name, peer, body)
        seconds = per_call(candidates, rounds=9 if size <= 1 << 20 else 5)
        for name, value in seconds.items():
            row = {
                "size": size,
                "name": name,
                "ns": value * 1e9,
                "mb_per_s": size / value / 1e6,
                "ratio_to_floor": value / seconds["floor"],
            }
            if name in PEER_HASH:
                row["hubsig_same_hash_ratio"] = seconds[f"hubsig {PEER_HASH[name]}"] / value
            rows.append(row)
    return rows


def streaming(sizes: tuple[int, ...] = (1024 * 1024, 16 * 1024 * 1024)) -> list[dict[str, Any]]:
    rows = []
    verifier = hubsig.Verifier(SECRET)
    for size in sizes:
        body = events_body(size)
        header = hubsig.sign(body, SECRET)
        candidates: dict[str, peers.Check] = {"floor (joined body)": peers.floor(body)[0]}
        for chunk_size in CHUNKS:
            view = memoryview(body)
            chunks = [view[start : start + chunk_size] for start in range(0, size, chunk_size)]

            def stream(chunks: list[memoryview] = chunks, header: str = header) -> object:
                check = verifier.begin(header)
                for chunk in chunks:
                    check.update(chunk)
                return check.verify()

            stream()
            candidates[f"hubsig streaming, {chunk_size // 1024} KiB chunks"] = stream
        seconds = per_call(candidates, rounds=7)
        floor = seconds["floor (joined body)"]
        for name, value in seconds.items():
            rows.append(
                {
                    "size": size,
                    "name": name,
                    "ns": value * 1e9,
                    "mb_per_s": size / value / 1e6,
                    "ratio_to_floor": value / floor,
                }
            )
    return rows
