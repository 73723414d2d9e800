"""The full objects smallinvoice API v2 answers with, for the sandbox: every key the API returns, unset ones null.

The spec (`smallinvoice-openapi-2.0.0.third-party.yaml`) marks these keys required on the GET schemas; the real
API sends them all, with null where nothing is set (its declared non-null types are an erratum of the spec, see
`tests/contract/errata/smallinvoice.toml`). Booleans default to false, enums to the API's documented default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTACT: dict[str, Any] = {
    "relation": ["CL"], "type": "C", "gender": None, "gender_salutation_active": False, "name": None,
    "name_addition": None, "salutation": None, "phone": None, "fax": None, "email": None, "website": None,
    "notes": None, "communication_language": None, "communication_channel": "U", "communication_newsletter": "N",
    "currency": "CHF", "ebill_account_id": None, "vat_identification": None, "vat_rate": None, "discount_rate": None,
    "discount_type": "P", "payment_grace": None, "hourly_rate": None, "custom_fields": [],
}  # fmt: skip
ADDRESS: dict[str, Any] = {
    "default": False, "country": None, "street": None, "street_no": None, "street2": None, "postcode": None,
    "city": None, "hide_on_documents": False, "default_prepage": False, "permissions": ["view", "edit"],
}  # fmt: skip
INVOICE: dict[str, Any] = {
    "contact_prepage_address_id": None, "contact_person_id": None, "period_from": None, "period_to": None,
    "period_text": None, "vat_included": False, "discount_rate": None, "discount_type": "P",
    "cash_discount_rate": None, "cash_discount_date": None, "paid_date": None, "bank_account_id": None,
    "isr_id": None, "isr_position": None, "payment_link_paypal": False, "payment_link_paypal_url": None,
    "payment_link_postfinance": False, "payment_link_postfinance_url": None, "payment_link_payrexx": False,
    "payment_link_payrexx_url": None, "payment_link_smartcommerce": False, "payment_link_smartcommerce_url": None,
    "signature_id": None, "layout_id": None, "page_amount": 1, "notes": None, "custom_fields": [], "texts": [],
    "free_texts": [], "workflow": [],
}  # fmt: skip
POSITION: dict[str, Any] = {
    "number": None, "name": None, "description": None, "price": None, "vat": None, "amount": None, "unit_id": None,
    "discount_rate": None, "discount_type": None, "show_only_total": False,
}  # fmt: skip
TEXT: dict[str, Any] = {"status": "D", "title": None, "introduction": None, "conditions": None}
PAYMENT: dict[str, Any] = {"channel": "T", "notes": None}
BANK_ACCOUNT: dict[str, Any] = {
    "default": False, "bank_name": None, "number": None, "bic": None, "post_account": None, "auto_sync": "inactive",
    "auto_sync_direction": None, "permissions": ["view", "edit"],
}  # fmt: skip
ISR: dict[str, Any] = {
    "default": False, "position": "A", "bank_name": None, "bank_address": None, "recipient_name": None,
    "recipient_addition": None, "recipient_street": None, "recipient_city": None, "delivery_number": None,
    "iban": None, "subscriber_number": None, "permissions": ["view", "edit"],
}  # fmt: skip


def full(shape: Mapping[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
    """`item` with every key of `shape` it lacks (copies of the defaults: lists are not shared)."""
    result = {key: list(value) if isinstance(value, list) else value for key, value in shape.items()}
    result.update(item)
    return result
