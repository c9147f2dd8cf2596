"""The FastAPI dependency's former name: ``hubsig.fastapi`` is where it lives now.

Kept so that code written against ``hubsig.dependency`` goes on working;
it is the same module's objects, not copies.
"""

from __future__ import annotations

from hubsig.fastapi import (
    DeliveryAcknowledged,
    DeliveryRejected,
    VerifiedDelivery,
    rejected_response,
)

__all__ = ["DeliveryAcknowledged", "DeliveryRejected", "VerifiedDelivery", "rejected_response"]
