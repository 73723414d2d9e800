"""The oracle itself: it sees what is wrong, explains only what an erratum names, and cannot pass on nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .coverage import assert_all_validated
from .oracle import Erratum, Finding, Oracle, load_errata, unexplained, unused
from .recorder import Exchange
from .test_smallinvoice_spec import SPEC

JSON = {"Content-Type": "application/json"}
BEARER = {"Authorization": "Bearer t0ken"}


@pytest.fixture(scope="module")
def oracle() -> Oracle:
    errata = load_errata("smallinvoice")
    return Oracle(SPEC, errata, server_url="https://api.smallinvoice.com/v2", prefix="/v2", strict_responses=True)


def exchange(
    method: str, path: str, body: Any = None, *, status: int = 200, answer: Any = None, **query: str
) -> Exchange:
    return Exchange(
        method=method, path=path, query=tuple(query.items()), request_headers={**BEARER, **(JSON if body is not None else {})},
        request_body=b"" if body is None else json.dumps(body).encode(), status=status, response_headers=JSON,
        response_body=json.dumps(answer if answer is not None else {"item": {}}).encode(),
    )  # fmt: skip


def messages(oracle: Oracle, *exchanges: Exchange) -> list[str]:
    return [str(f) for f in oracle.findings(exchanges)]


def test_issue_13_defects_are_findings(oracle: Oracle) -> None:
    """The three adapter defects of issue 13, as they went over the wire before the fix, do not pass."""
    address = {"street": "Neuweg", "postcode": "3000", "city": "Bern", "country": "CH"}
    found = messages(
        oracle,
        exchange("PUT", "/v2/contacts/7", {"main_address": address}),
        exchange("PATCH", "/v2/receivables/invoices/9/change-status", {"status": "S"}, **{"with": "contact"}),
        exchange(
            "PATCH",
            "/v2/receivables/invoices/9/send-by-email",
            {"subject": "s", "body": "b", "recipients": [{"email": "a@b.ch"}]},
            status=204,
        ),
    )
    assert any("PUT /contacts/{contactId} request" in m and "'main_address' was unexpected" in m for m in found)
    assert any("change-status request query.with: undeclared query parameter" in m for m in found)
    assert any("send-by-email request recipients/0: 'name' is a required property" in m for m in found)


def test_an_answer_missing_a_required_key_or_outside_the_api_is_a_finding(oracle: Oracle) -> None:
    answer = {"items": [{"id": 1}], "pagination": {"total": 1, "limit": 100, "offset": 0}}
    found = messages(oracle, exchange("GET", "/v2/contacts", answer=answer), exchange("GET", "/elsewhere/contacts"))
    assert any(m.startswith("GET /contacts response items/0: 'name' is a required property") for m in found)
    assert "GET /elsewhere/contacts request -: outside the spec's API" in found
    assert oracle.checked["GET /contacts", "request"] >= 1 and oracle.checked["GET /contacts", "response"] >= 1


def test_an_erratum_explains_only_its_fields_and_each_field_must_be_needed(oracle: Oracle) -> None:
    erratum = Erratum(
        name="nulls", operation="GET /contacts", part="response", fields=("*/fax", "*/website"), message="^None",
        spec="s", real="r", source="src",
    )  # fmt: skip
    fax = Finding("GET /contacts", "response", "items/0/fax", "None for not nullable")
    name = Finding("GET /contacts", "response", "items/0/name", "None for not nullable")
    left, used = unexplained(oracle, [fax, name], [erratum])
    assert left == [name]
    assert unused([erratum], used) == ["nulls[*/website]"]


def test_nothing_recorded_or_an_operation_not_driven_fails(oracle: Oracle) -> None:
    with pytest.raises(AssertionError, match="recorded 0 of the 3"):
        assert_all_validated(oracle, [], 3, {"GET /contacts"})
    errata = load_errata("smallinvoice")  # the same spec corrections: the parsed spec is reused
    fresh = Oracle(SPEC, errata, server_url="https://api.smallinvoice.com/v2", prefix="/v2", strict_responses=True)
    recorded = [exchange("GET", "/v2/auth/owner"), exchange("GET", "/v2/auth/owner")]
    list(fresh.findings(recorded))
    with pytest.raises(AssertionError, match=r"not driven: \['GET /contacts'\]"):
        assert_all_validated(fresh, recorded, 2, {"GET /auth/owner", "GET /contacts"})
