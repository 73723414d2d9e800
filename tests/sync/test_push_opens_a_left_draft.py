"""A push whose smallinvoice create left a draft (its change-status failed) is finished by the next push, not marked
done while the invoice stays a draft."""

from __future__ import annotations

from pathlib import Path

from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep
from tests.adapters.smallinvoice.test_spec_fixes import customer, invoice


async def test_the_next_push_opens_the_draft_a_failed_status_change_left(tmp_path: Path) -> None:
    async with SmallInvoiceSandbox() as sandbox, ab.connect(
        "smallinvoice", base_url=sandbox.base_url, **sandbox.connect_settings()
    ) as ledger:
        ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
        await ledger.customers.upsert(customer())
        journal = tmp_path / "journal.db"
        sandbox.fail_next(500, count=8, path="/change-status", method="PATCH")
        first = await ab.push(ledger, [invoice("R-1")], journal=journal)
        assert first.outcomes[0].outcome == "unknown"
        sandbox.scripted_faults.clear()
        second = await ab.push(ledger, [invoice("R-1")], journal=journal)
        assert second.outcomes[0].state is not None and second.outcomes[0].state.value == "done"
    assert [i["status"] for i in sandbox.invoices.values()] == ["S"]  # issued once, not left a draft marked done
