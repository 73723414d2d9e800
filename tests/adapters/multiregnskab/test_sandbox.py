"""The sandbox itself: all 21 documented Public Client paths with their odd shapes, statuses and faults."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from accounting_bridge.adapters.multiregnskab.sandbox import PUBLIC_PREFIX, MultiRegnskabSandbox

import accounting_bridge as ab

#: The 21 paths of Public Client API v1.0.17 (method, path).
SPEC_PATHS = {
    ("POST", "/login"),
    ("POST", "/refreshToken"),
    ("POST", "/accessRequest"),
    ("DELETE", "/tokens"),
    ("GET", "/user"),
    ("POST", "/user"),
    ("DELETE", "/user"),
    ("GET", "/companies"),
    ("GET", "/archiveFiles"),
    ("GET", "/archiveFile"),
    ("PUT", "/archiveFile/{companyXid}/{archiveFileXid}"),
    ("DELETE", "/archiveFile/{companyXid}/{archiveFileXid}"),
    ("POST", "/filesForUseInRegistrations"),
    ("POST", "/suggestedRegistrations"),
    ("GET", "/customers/{companyXid}"),
    ("POST", "/customers"),
    ("POST", "/invoices"),
    ("POST", "/sales"),
    ("GET", "/bankAccounts/{companyXid}"),
    ("GET", "/bankPostings/{companyXid}/{bankAccountXid}"),
    ("GET", "/bankBalances/{companyXid}"),
    ("GET", "/productTypes/{companyXid}"),
    ("GET", "/products/{companyXid}"),
    ("GET", "/unitsOfMeasure/{language}"),
}


def test_sandbox_serves_every_spec_path() -> None:
    app = MultiRegnskabSandbox().app()
    served = {
        (route.method, route.resource.canonical.removeprefix(PUBLIC_PREFIX))
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(PUBLIC_PREFIX)
    }
    assert served == SPEC_PATHS
    assert len({path for _m, path in SPEC_PATHS}) == 21


async def test_every_path_needs_a_token(sandbox: MultiRegnskabSandbox) -> None:
    open_paths = {("POST", "/login"), ("POST", "/user")}
    async with aiohttp.ClientSession() as session:
        for method, path in sorted(SPEC_PATHS - open_paths):
            url = sandbox.public_url + path.format(
                companyXid=1002, archiveFileXid=1, bankAccountXid=10027, language="da"
            )
            async with session.request(method, url, json={}) as response:
                assert response.status == 401, (method, path)
                assert await response.json() == {"message": "Not authorized"}


async def test_user_lifecycle_and_sales(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    created = await ledger.raw("POST", "/user", json={"userName": "Ny@Example.dk", "password": "hemmelig-1"})
    body = created.json()
    assert created.status == 200 and set(body) == {"tokenResponse", "codeForAccessRequest"}
    assert set(body["tokenResponse"]) == {"token", "tokenExpires", "refreshToken"}
    assert len(body["tokenResponse"]["tokenExpires"]) == 23  # YYYY-MM-DDTHH:mm:ss.SSS, no zone
    again = await ledger.raw("POST", "/user", json={"userName": "ny@example.dk", "password": "x"})
    assert again.status == 409
    token = body["tokenResponse"]["token"]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.get(sandbox.public_url + "/companies") as response:
            assert await response.json() == {"companiesAndAccessList": [], "lastCompanies": []}
        async with session.delete(sandbox.public_url + "/user") as response:
            assert response.status == 200
        async with session.get(sandbox.public_url + "/user") as response:
            assert response.status == 401
    await ledger.customers.upsert(
        ab.Customer(number="K-1", name="K", address=ab.Address(street="a", postcode="1", city="c"))
    )
    customer_xid = int((await ledger.customers.get("K-1")).id or 0)
    sale = await ledger.raw(
        "POST",
        "/sales",
        json={"companyXid": 1002, "customerXid": customer_xid, "amount": "9.999,99", "generateMobilePayQrCode": True},
    )
    assert sale.status == 200 and sale.json()["companyXid"] == 1002 and sale.json()["qrCodeBase64"]
    bad = await ledger.raw("POST", "/sales", json={"companyXid": 1002, "customerXid": customer_xid, "amount": "ni"})
    assert bad.status == 400 and "amount" in bad.json()["message"]


async def test_odd_shapes_and_statuses(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    # company in the query for the archive, required maxLines
    missing = await ledger.raw("GET", "/archiveFiles", params={"companyXid": "1002"})
    assert missing.status == 400
    other = await ledger.raw("GET", "/customers/4242")
    assert other.status == 403
    not_found = await ledger.raw("DELETE", "/archiveFile/1002/424242")
    assert not_found.status == 404
    # DELETE /tokens needs all four booleans in its JSON body
    partial = await ledger.raw("DELETE", "/tokens", json={"invalidateNow": True})
    assert partial.status == 400
    # invoices: the spec's `required` names invoiceDate, the property is date
    await ledger.customers.upsert(
        ab.Customer(number="K-2", name="K", address=ab.Address(street="a", postcode="1", city="c"))
    )
    customer_xid = int((await ledger.customers.get("K-2")).id or 0)
    line = {"lineNo": 0, "lineText": "x", "amount": "1,00", "productTypeXid": 10021}
    base = {"companyXid": 1002, "invoiceXid": 0, "customerXid": customer_xid, "lines": [line]}
    assert (await ledger.raw("POST", "/invoices", json={**base, "invoiceDate": "2026-01-01"})).status == 400
    old = await ledger.raw("POST", "/invoices", json={**base, "date": "2001-01-01"})
    assert old.status == 400 and "fiscal" in old.json()["message"]
    # registrations: more than three files, unbalanced lines
    too_many = await ledger.raw(
        "POST",
        "/suggestedRegistrations",
        json={"companyXid": 1002, "date": "2026-01-01", "description": "x", "filesToAttachXids": [{"xid": 1}] * 4},
    )
    assert too_many.status == 400
    unbalanced = await ledger.raw(
        "POST",
        "/suggestedRegistrations",
        json={
            "companyXid": 1002,
            "date": "2026-01-01",
            "description": "x",
            "debitCreditlines": [
                {"accountNumber": "1", "amount": "1.000,00"},
                {"accountNumber": "2", "amount": "-999.00"},
            ],
        },
    )
    assert unbalanced.status == 400
    # upload default: hidden until a registration references it
    upload = await ledger.raw(
        "POST", "/filesForUseInRegistrations", json={"companyXid": 1002, "fileBodyBase64": "aGVq"}
    )
    xid = upload.json()["xid"]
    assert sandbox.company(1002).files[xid].hidden is True


async def test_no_idempotency_every_post_is_a_new_registration(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    body = {
        "companyXid": 1002,
        "date": "2026-01-01",
        "description": "x",
        "debitCreditlines": [{"accountNumber": "1", "amount": "5,00"}, {"accountNumber": "2", "amount": "-5,00"}],
    }
    first = await ledger.raw("POST", "/suggestedRegistrations", json=body)
    second = await ledger.raw("POST", "/suggestedRegistrations", json=body)
    assert first.json()["xid"] != second.json()["xid"] and len(sandbox.company(1002).registrations) == 2


async def test_fault_switches(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, sleep: Any) -> None:
    sandbox.faults.add("GET", "/companies", status=429, headers={"Retry-After": "3"})
    sandbox.faults.add("GET", "/companies", status=500)
    assert len(await ledger.companies()) == 2
    assert sleep.delays[0] == 3.0 and len(sleep.delays) == 2
    sandbox.faults.add("GET", "/companies", delay=0.05)
    started = asyncio.get_running_loop().time()
    await ledger.companies()
    assert asyncio.get_running_loop().time() - started >= 0.04
    assert not sandbox.faults.queue


async def test_fault_skip_and_answer(ledger: ab.Ledger, sandbox: MultiRegnskabSandbox) -> None:
    sandbox.faults.add("GET", "/companies", answer={"companiesAndAccessList": [], "lastCompanies": []}, skip=1)
    assert len(await ledger.companies()) == 2  # skipped
    assert await ledger.companies() == []  # replaced
    assert not sandbox.faults.queue
