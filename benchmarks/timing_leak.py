"""Does verification time depend on how much of a wrong signature matches? (dudect-style)

``python -m benchmarks.timing_leak [SAMPLES]`` times ``Verifier.verify`` on two
classes of wrong signatures, randomly interleaved: one differing from the
right digest in its first byte, one in its last; header parsing included.

A Python harness has biases of its own (which of two slots a sample lands
in measurably changes its time), so each run is done twice with the classes
in swapped slots: the slot bias cancels in the difference, leaving the
effect of the mismatch position, with its Welch t statistic (|t| > 4.5 is
dudect's threshold for a leak). An A/A run (the same class in both slots,
swapped likewise) shows the statistic when there is, by construction,
nothing to find.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time

import hubsig

SECRET = b"timing-secret"


def _cropped(values: list[int], quantile: float = 0.9) -> list[int]:
    """Drop the slowest tail (interrupts, scheduling), as dudect does."""
    limit = sorted(values)[int(len(values) * quantile)]
    return [value for value in values if value <= limit]


def _difference(a: str, b: str, samples: int, seed: int) -> tuple[float, float]:
    """Mean time in slot 0 minus slot 1 (ns), and its standard error."""
    body = bytes(512)
    verifier = hubsig.Verifier(SECRET)
    sources = (a, b)
    times: tuple[list[int], list[int]] = ([], [])
    chooser = random.Random(seed)
    clock = time.perf_counter_ns
    for _ in range(samples):
        slot = 1 if chooser.random() < 0.5 else 0
        header = "sha1=" + sources[slot]  # a fresh string each time, as from a request
        start = clock()
        with contextlib.suppress(hubsig.SignatureMismatch):
            verifier.verify(body, header)
        times[slot].append(clock() - start)
    zero, one = _cropped(times[0]), _cropped(times[1])
    mean0, mean1 = sum(zero) / len(zero), sum(one) / len(one)
    var0 = sum((x - mean0) ** 2 for x in zero) / (len(zero) - 1)
    var1 = sum((x - mean1) ** 2 for x in one) / (len(one) - 1)
    return mean0 - mean1, math.sqrt(var0 / len(zero) + var1 / len(one))


def effect(a: str, b: str, samples: int) -> dict[str, float]:
    """The time of class ``a`` minus class ``b`` with the slot bias removed."""
    forward, forward_error = _difference(a, b, samples, seed=1)
    backward, backward_error = _difference(b, a, samples, seed=2)
    difference = (forward - backward) / 2
    error = math.sqrt(forward_error**2 + backward_error**2) / 2
    return {
        "difference_ns": difference,
        "welch_t": difference / error,
        "slot_bias_ns": (forward + backward) / 2,
    }


def run(samples: int = 200_000) -> dict[str, object]:
    body = bytes(512)
    digest = bytes.fromhex(hubsig.sign(body, SECRET)[5:])
    first, last = bytearray(digest), bytearray(digest)
    first[0] ^= 1
    last[-1] ^= 1
    measured = effect(first.hex(), last.hex(), samples)
    control = effect(first.hex(), first.hex(), samples)
    return {
        "samples_per_run": samples,
        "first_vs_last_byte_mismatch": measured,
        "a_a_control": control,
        "leak_detected": abs(float(measured["welch_t"])) > 4.5,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000), indent=1))
