"""What the transactional stores share: lending a handler a transaction, and finding it again."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hubsig._dedupe import Claims
from hubsig.errors import ConfigurationError

if TYPE_CHECKING:
    from hubsig._delivery import Delivery

logger = logging.getLogger("hubsig")


class Lent:
    """The transaction a store lent a handler: which store, and on which connection."""

    __slots__ = ("connection", "store")

    def __init__(self, store: object, connection: Any) -> None:
        self.store = store
        self.connection = connection


def claims_of(delivery: Delivery, store: object) -> Claims:
    """The claims ``store`` holds for ``delivery``; a delivery another store (or none)
    claimed cannot borrow this one's transaction."""
    claims = getattr(delivery, "claims", None)
    if not isinstance(claims, Claims) or claims.store is not store:
        raise ConfigurationError(
            "this delivery holds no claims in this store: only a handler run by a receiver "
            "with this store (store=...) can use its transaction"
        )
    return claims


def lent_connection(claims: Claims, store: object) -> Any:
    lent = claims.transaction
    if not isinstance(lent, Lent) or lent.store is not store:
        raise ConfigurationError("this delivery's transaction belongs to another store")
    return lent.connection


def committed_by_handler() -> None:
    logger.error(
        "the handler committed or rolled back hubsig's transaction itself: its writes and "
        "its events' completion are no longer one transaction"
    )
