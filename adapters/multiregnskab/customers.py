"""Customers, whose schema both APIs share: list, client-side lookup by number, create-once "upsert".

Each adapter supplies only how rows are read and how a create is sent (its own paths, auth and transport).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar

import attrs

from accounting_bridge import safety
from accounting_bridge.errors import Conflict, NotFound, WriteOutcomeUnknown
from accounting_bridge.models import Customer
from accounting_bridge.outcomes import read_back
from accounting_bridge.transport.http import Response

from . import wire
from .answers import read_written

__all__ = ["SharedCustomers"]


class SharedCustomers:
    """Mixin for both adapters. The APIs can create customers but not update them: an existing customer with the
    same content is returned as is, one with different content is a `Conflict`. A create whose answer is lost or
    unreadable is resolved by looking the number up; if that does not find it either → `WriteOutcomeUnknown`."""

    name: ClassVar[str]

    async def _customer_rows(self) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    async def _customer_company(self) -> Any:
        raise NotImplementedError

    async def _post_customer(self, payload: Mapping[str, Any], *, reference: str, lookup: Any) -> Response:
        raise NotImplementedError

    def _created_customer_body(self, response: Response) -> Any:
        return response.json()

    async def _find_customer(self, number: str) -> Mapping[str, Any] | None:
        """Client-side lookup by customer number (the APIs have no search)."""
        return next((row for row in await self._customer_rows() if row.get("customerNumber") == number), None)

    async def list_customers(self) -> AsyncIterator[Customer]:
        for row in await self._customer_rows():
            yield wire.decode_customer(row)

    async def get_customer(self, number: str) -> Customer:
        safety.business_key(number, "number", backend=self.name)
        row = await self._find_customer(number)
        if row is None:
            raise NotFound(f"customer {number!r} not found", backend=self.name, status=404)
        return wire.decode_customer(row)

    async def upsert_customer(self, customer: Customer) -> Customer:
        payload = wire.encode_customer(customer, await self._customer_company())
        existing = await self._find_customer(customer.number)
        if existing is not None:
            differences = wire.customer_differences(payload, existing)
            if differences:
                raise Conflict(
                    f"customer {customer.number!r} exists with different {', '.join(differences)}; the Multi-Regnskab "
                    "API can create customers but not update them",
                    backend=self.name,
                    status=409,
                )
            return wire.decode_customer(existing)

        async def landed() -> bool:
            return await self._find_customer(customer.number) is not None

        async def stored() -> Customer | None:
            row = await self._find_customer(customer.number)
            return None if row is None else wire.decode_customer(row)

        response = await self._post_customer(payload, reference=customer.number, lookup=landed)
        if response.confirmed_by_lookup:
            lost = WriteOutcomeUnknown(
                "create customer: its answer was lost and a lookup saw the customer, but reading it back failed; "
                "look it up by its number",
                backend=self.name,
                reference=customer.number,
            )
            return await read_back(stored, _always(lost))
        try:
            xid = read_written(
                response,
                lambda r: wire.xid_of(self._created_customer_body(r), "create customer"),
                what="create customer",
                backend=self.name,
                reference=customer.number,
            )
        except WriteOutcomeUnknown as unreadable:
            # accepted, but the answer is unreadable: the customer number is a business key, so look it up
            return await read_back(stored, _always(unreadable))
        return attrs.evolve(customer, id=str(xid), raw={**payload, "xid": xid})


def _always(unknown: WriteOutcomeUnknown) -> Callable[[str], WriteOutcomeUnknown]:
    """The same `WriteOutcomeUnknown` whatever the read-back's problem (its message already says what happened)."""
    return lambda _problem: unknown
