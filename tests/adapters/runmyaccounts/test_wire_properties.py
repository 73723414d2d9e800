"""Property tests: list normalisation in every form, Decimal formatting and date round trips."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from accounting_bridge.adapters.runmyaccounts import wire
from hypothesis import given, settings
from hypothesis import strategies as st

from accounting_bridge import jsoncodec

texts = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FF), min_size=1, max_size=8)
entries = st.fixed_dictionaries({"id": texts, "name": texts})
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9)
EMPTY_FORMS = ["null", "{}", '{"invoice": []}', "", '{"invoice": null}', '{"invoice": ""}', "[]"]


@given(st.lists(entries, max_size=6), st.booleans())
def test_top_level_list_round_trip_json(values: list[dict[str, str]], single_as_object: bool) -> None:
    body = wire.json_bytes({"invoice": values}, single_as_object=single_as_object)
    parsed = wire.parse_json(body)
    if len(values) == 1 and single_as_object:
        assert isinstance(parsed["invoice"], dict)  # the mapped quirk is really produced
    assert wire.items(parsed, "invoice") == values


@given(st.lists(entries, max_size=6))
def test_top_level_list_round_trip_xml(values: list[dict[str, str]]) -> None:
    parsed = wire.parse_xml(wire.render_xml("invoices", {"invoice": values}))
    assert wire.items(parsed, "invoice") == values


@given(st.lists(entries, max_size=6), st.sampled_from(["object", "array", "wrappers"]))
def test_nested_list_every_shape(values: list[dict[str, str]], shape: str) -> None:
    if shape == "wrappers":  # [{"part": {...}}, ...]: the wrong input form some clients send
        tree: dict[str, Any] = {"parts": [{"part": v} for v in values]}
    elif shape == "object" and len(values) == 1:
        tree = {"parts": {"part": values[0]}}
    else:
        tree = {"parts": {"part": values}}
    assert wire.nested(jsoncodec.loads(jsoncodec.dumps(tree)), "parts", "part") == values


@given(st.sampled_from(EMPTY_FORMS))
def test_every_empty_form_is_empty(body: str) -> None:
    assert wire.items(wire.parse_json(body.encode()), "invoice") == []


@given(st.sampled_from([None, "", {}, [], {"part": []}, {"part": ""}, {"part": None}]))
def test_every_nested_empty_form_is_empty(value: Any) -> None:
    assert wire.nested({"parts": value}, "parts", "part") == []


@given(decimals)
def test_decimal_format_round_trip(value: Decimal) -> None:
    text = wire.format_decimal(value)
    assert "E" not in text and "e" not in text
    assert "." in text  # Java double style: "5.0", never "5"
    assert Decimal(text) == value
    assert wire.format_decimal(Decimal(text)) == text  # canonical
    assert wire.parse_decimal(text) == value


@given(decimals)
@settings(max_examples=50)
def test_decimal_survives_both_wire_formats(value: Decimal) -> None:
    tree = {"amount_paid": wire.format_decimal(value)}
    from_json = wire.parse_json(wire.json_bytes(tree))
    from_xml = wire.parse_xml(wire.render_xml("payment", tree))
    assert wire.parse_decimal(from_json["amount_paid"]) == value
    assert wire.parse_decimal(from_xml["amount_paid"]) == value


@given(st.dates(min_value=_dt.date(1990, 1, 1), max_value=_dt.date(2100, 12, 31)))
def test_date_round_trip_keeps_local_day(day: _dt.date) -> None:
    text = wire.format_date(day)
    assert wire.parse_date(text) == day
    parsed = _dt.datetime.fromisoformat(text)
    assert parsed.utcoffset() in (_dt.timedelta(hours=1), _dt.timedelta(hours=2))
    # in UTC the same instant is the previous calendar day: the decoder must not go through UTC
    assert parsed.astimezone(_dt.timezone.utc).date() == day - _dt.timedelta(days=1)


def test_zurich_offsets_at_switch_over() -> None:
    assert wire.zurich_offset(_dt.date(2024, 3, 30)) == "+01:00"
    assert wire.zurich_offset(_dt.date(2024, 3, 31)) == "+01:00"  # switch at 02:00, midnight still winter
    assert wire.zurich_offset(_dt.date(2024, 4, 1)) == "+02:00"
    assert wire.zurich_offset(_dt.date(2024, 10, 27)) == "+02:00"  # back at 03:00
    assert wire.zurich_offset(_dt.date(2024, 10, 28)) == "+01:00"
