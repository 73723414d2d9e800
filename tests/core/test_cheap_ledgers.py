"""Cheap ledgers (issue 9.3): entry points read once per process (with `refresh`), compiled redaction shared by
every ledger of one credential, and Run my Accounts answers parsed once."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from accounting_bridge.adapters.runmyaccounts import wire

import accounting_bridge as ab
from accounting_bridge import registry
from accounting_bridge.transport import redact
from accounting_bridge.transport.redact import Redactor


def test_entry_points_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    real = registry.entry_points

    def counting(**kwargs: Any) -> Any:
        scans.append(kwargs["group"])
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry.refresh()
    for _ in range(3):
        ab.connect("memory")
    assert ab.available()
    assert len(scans) == 1
    registry.refresh()  # e.g. after installing a plugin into the running process
    ab.connect("memory")
    assert len(scans) == 2


def test_a_changed_sys_path_reads_the_entry_points_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    scans: list[str] = []
    real = registry.entry_points
    monkeypatch.setattr(registry, "entry_points", lambda **kw: scans.append("scan") or real(**kw))
    registry.refresh()
    ab.connect("memory")
    monkeypatch.syspath_prepend(str(tmp_path))
    ab.connect("memory")
    assert len(scans) == 2
    assert registry._scanned is not None and registry._scanned[0] == tuple(sys.path)


def test_redactors_with_the_same_secrets_share_one_compiled_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = redact._secret_pattern
    monkeypatch.setattr(redact, "_secret_pattern", lambda secret: built.append(secret) or real(secret))
    one, two = Redactor(["secret-key-4711", "pass word"]), Redactor(["pass word", "secret-key-4711"])
    assert one.text("x secret-key-4711 pass+word") == "x *** ***"
    assert two.text("secret%2Dkey-4711") == "***"
    assert one._current_pattern() is two._current_pattern()
    assert sorted(built) == ["pass word", "secret-key-4711"]  # built once, for the first redactor only
    two.rotate("token", "fresh-token-0001")
    assert one._current_pattern() is not two._current_pattern()
    assert two.text("fresh-token-0001 secret-key-4711") == "*** ***"
    assert one.text("fresh-token-0001") == "fresh-token-0001"


def test_ledgers_of_one_credential_share_the_pattern() -> None:
    settings = {"tenant": "demo", "api_key": "rma-secret-key-4711"}
    with_a, with_b = ab.connect("runmyaccounts", **settings), ab.connect("runmyaccounts", **settings)
    redactors = [ledger.adapter.transport.redactor for ledger in (with_a, with_b)]  # type: ignore[attr-defined]
    assert redactors[0]._current_pattern() is redactors[1]._current_pattern()


ANSWERS: list[tuple[bytes, str]] = [
    (b'{"customer": {"customernumber": "K-1"}}', "application/json"),
    (b'{ "error": "Die Sprache \'xx\' ist unbekannt" }', "application/json"),
    (b'{ "error": "ohne Typ" }', ""),
    (b"<customers><customer><customernumber>K-1</customernumber><name/></customer></customers>", "application/xml"),
    (b"<error>Kein Zugriff</error>", "application/xml"),
    (b"<error><message>Nachricht</message></error>", ""),
    (b"<invoices/>", "application/xml"),
    (b'{"error": "im HTML"}', "text/html"),
    (b"<html><body>Wartung</body></html>", "text/html"),
    (b"not json at all", "application/json"),
    (b"<broken", "application/xml"),
    (b'{"a": 1}', "application/xml"),
]


@pytest.mark.parametrize(("body", "content_type"), ANSWERS)
def test_one_parse_reads_what_the_two_parsers_read(body: bytes, content_type: str) -> None:
    try:
        expected_tree: Any = wire.decode_body(body, content_type)
    except ab.ResponseError:
        expected_tree = "unreadable"
    expected_message = wire.error_text(body, content_type)
    try:
        tree, message = wire.read_answer(body, content_type)
    except ab.ResponseError:
        tree, message = "unreadable", None
    assert message == expected_message
    if expected_message is None:
        assert tree == expected_tree


async def test_a_json_answer_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

    parses: list[int] = []
    real = wire.jsoncodec.loads
    monkeypatch.setattr(wire.jsoncodec, "loads", lambda text: parses.append(1) or real(text))
    async with RmaSandbox(mandant="demo", api_key="rma-secret-key-4711") as sandbox:
        sandbox.seed(customers=3, invoices=2)
        async with ab.connect(
            "runmyaccounts", base_url=sandbox.base_url, tenant="demo", api_key="rma-secret-key-4711"
        ) as ledger:
            assert len([c async for c in ledger.customers.list()]) >= 3
    assert len(parses) == 1
