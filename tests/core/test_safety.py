"""The one rule for caller text in URL paths and headers, and for server ids in paths (issue #8.3, #8.5)."""

from __future__ import annotations

import pytest
from yarl import URL

import accounting_bridge as ab
from accounting_bridge import safety

NOT_A_SEGMENT = [
    "",
    "   ",
    ".",
    "..",
    "a/b",
    "/",
    "a\\b",
    "R?x=1",
    "R#1",
    "100%",
    "%2E%2E",
    "R\r\n1",
    "R\n",
    "R\x00",
    "R\t1",
    "R\x7f",
    "R\x9b",
    "R\ud800",
    "\udfff",
]


@pytest.mark.parametrize("value", NOT_A_SEGMENT, ids=repr)
def test_what_cannot_be_a_path_segment_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        safety.path_segment(value, "invoice_number", backend="x")
    assert info.value.fields == ("invoice_number",)
    assert info.value.backend == "x"


@pytest.mark.parametrize("value", [None, 5, 1.5, b"R-1", ["R-1"]], ids=repr)
def test_a_path_segment_must_be_text(value: object) -> None:
    with pytest.raises(ab.ValidationError) as info:
        safety.path_segment(value, "number")
    assert info.value.fields == ("number",)
    assert "must be text" in str(info.value)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("R-2026-001", "R-2026-001"),
        ("...", "..."),
        (".hidden", ".hidden"),
        ("a..", "a.."),
        ("R 1", "R%201"),
        ("Løn", "L%C3%B8n"),
        ("a:b@c+d", "a%3Ab%40c%2Bd"),
        ("🥐", "%F0%9F%A5%90"),
    ],
)
def test_anything_else_is_percent_encoded_and_stays_one_segment(value: str, encoded: str) -> None:
    segment = safety.path_segment(value, "number")
    assert segment == encoded
    url = URL("https://h.example/api/clients/demo/invoices/" + segment)  # what aiohttp does with the text
    assert url.parts[-1] == value
    assert url.parts[:-1] == ("/", "api", "clients", "demo", "invoices")


def test_a_setting_that_cannot_be_a_segment_is_a_configuration_error_without_its_value() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        safety.setting_path_segment("te/nant", "tenant", backend="rma")
    assert "'tenant'" in str(info.value) and "te/nant" not in str(info.value)
    assert safety.setting_path_segment("demo", "tenant") == "demo"


@pytest.mark.parametrize("value", ["ref\r\nX-Injected: 1", "ref\n", "ref\r", "\x00", "a\x0bb", "a\x7f", "x\ud800"])
def test_what_cannot_be_a_header_value_is_refused(value: str) -> None:
    with pytest.raises(ab.ValidationError) as info:
        safety.header_value(value, "reference")
    assert info.value.fields == ("reference",)
    assert "header" in str(info.value)


@pytest.mark.parametrize(
    ("value", "sent"),
    [("ref-2026-11", "ref-2026-11"), ("a b/c?d#e", "a b/c?d#e"), ("Løn-2026", "L%C3%B8n-2026"), ("100%", "100%25")],
)
def test_header_values_are_visible_ascii(value: str, sent: str) -> None:
    assert safety.header_value(value, "reference") == sent


def test_a_header_setting_error_never_shows_the_value() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        safety.setting_header_value("sk_live_secret\r\nX: y", "api_key", backend="rma")
    assert "'api_key'" in str(info.value) and "sk_live_secret" not in str(info.value)


@pytest.mark.parametrize("value", [0, 7, 2**40, "12", "000123"])
def test_server_ids_that_are_whole_numbers_go_into_paths(value: object) -> None:
    assert safety.server_id(value, "contact id") == str(value)


@pytest.mark.parametrize("value", ["..", ".", "1/2", "../../auth/owner", "", "12a", "١٢", "1\n", -1, True, 1.5, None])
def test_any_other_server_id_is_a_response_error(value: object) -> None:
    with pytest.raises(ab.ResponseError) as info:
        safety.server_id(value, "contact id", backend="smallinvoice")
    assert info.value.backend == "smallinvoice"


@pytest.mark.parametrize("value", ["", " ", "K\n", "K\x00", "K\ud800", 5, None], ids=repr)
def test_business_keys_without_a_path_refuse_blanks_controls_surrogates_and_non_text(value: object) -> None:
    with pytest.raises(ab.ValidationError) as info:
        safety.business_key(value, "number")
    assert info.value.fields == ("number",)


def test_business_keys_without_a_path_may_hold_path_characters() -> None:
    assert safety.business_key("RE-2026/001?#%", "number") == "RE-2026/001?#%"
