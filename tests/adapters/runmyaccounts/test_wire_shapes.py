"""A document that is not the expected list must not read as an empty list (a proxy page, another resource)."""

from __future__ import annotations

import pytest
from accounting_bridge.adapters.runmyaccounts import wire

import accounting_bridge as ab


@pytest.mark.parametrize("tree", [None, "", {}, [], {"invoice": []}, {"@count": "0"}])
def test_the_documented_empty_forms_are_an_empty_list(tree: object) -> None:
    assert wire.items(tree, "invoice") == []


@pytest.mark.parametrize("tree", [{"unexpected": True}, {"head": "", "body": {"h1": "Service unavailable"}}])
def test_an_object_without_the_items_is_a_response_error(tree: object) -> None:
    with pytest.raises(ab.ResponseError, match="without 'invoice'"):
        wire.items(tree, "invoice")


def test_an_html_body_is_not_parsed_as_xml() -> None:
    page = b'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Maintenance</h1></body></html>'
    with pytest.raises(ab.ResponseError, match="text/html"):
        wire.decode_body(page, "text/html")


def test_a_body_without_content_type_is_still_sniffed() -> None:
    assert wire.decode_body(b"<invoices/>", "") is None
    assert wire.decode_body(b'{"invoice": []}', "") == {"invoice": []}
