"""smallinvoice API v2 facts and the adapter's choices where the documentation is silent.

Everything marked INFERRED is a decision taken without a vendor statement (see ``backends/smallinvoice.md``);
it is kept here, in one place, so it can be changed (most of it is also reachable through a setting).
"""

from __future__ import annotations

from typing import Final

#: [V] official PHP wrapper `EndpointStrategy::$apiURLProduction` / `$apiURLStaging`.
PRODUCTION_URL: Final = "https://api.smallinvoice.com/v2"
STAGING_URL: Final = "https://stage-api.smallinvoice.com/v2"
#: [3P] only the third-party Java client names the demo host.
DEMO_URL: Final = "https://demo-api.smallinvoice.com/v2"

#: [V] token endpoint (relative to the base URL), JSON body.
TOKEN_PATH: Final = "auth/access-tokens"  # noqa: S105 - a path, not a secret

#: [V] list parameters: `limit` 1..200 (default 100) and a 0-based `offset`.
MAX_PAGE_SIZE: Final = 200
DEFAULT_PAGE_SIZE: Final = 100

#: INFERRED: the scopes this adapter's operations need (contacts, invoices and payments, units/bank accounts/ISRs).
DEFAULT_SCOPES: Final = ("contact", "invoice", "configuration")

#: [V] languages the API accepts in `Accept-Language` (invoices also accept `es`).
LANGUAGES: Final = ("de", "en", "fr", "it")
INVOICE_LANGUAGES: Final = ("de", "en", "es", "fr", "it")

#: [3P] date-times are written "Y-m-d H:i:s" without a zone.
DATETIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

#: INFERRED: the neutral API has no catalog notion; positions are sent as normal ("N") product ("P") positions.
POSITION_TYPE: Final = "N"
POSITION_CATALOG_TYPE: Final = "P"
#: INFERRED: a contact created through `customers.upsert` is a customer ("CL").
CONTACT_RELATION: Final = ("CL",)
#: INFERRED: days between invoice date and due date when the neutral invoice has no due date.
DEFAULT_PAYMENT_DAYS: Final = 30

#: [3P] invoice status codes. PP is described but missing from the third-party enum.
STATUS_DRAFT: Final = "DR"
STATUS_SENT: Final = "S"
STATUS_PAID: Final = "P"
STATUS_PARTIALLY_PAID: Final = "PP"
STATUS_CANCELLED: Final = "C"
STATUS_DELETED: Final = "D"
REMINDER_STATUSES: Final = ("R", "R1", "R2", "R3", "DC")
ALL_STATUSES: Final = (
    STATUS_DRAFT,
    STATUS_SENT,
    STATUS_PAID,
    STATUS_PARTIALLY_PAID,
    *REMINDER_STATUSES,
    STATUS_CANCELLED,
    STATUS_DELETED,
)

#: [3P] invoice payment types and channels.
PAYMENT_TYPES: Final = ("N", "C", "D", "W")
PAYMENT_CHANNELS: Final = ("T", "C", "PP", "PF", "CC", "PR", "SC")

#: INFERRED: the `filter` comparator syntax ("comparators are prepended to the value") is not documented, so date
#: and customer filters are applied by the adapter on the listed items; only equality filters go to the server.
SERVER_SIDE_DATE_FILTER: Final = False

#: INFERRED: look-ups by number (contacts, invoices) send `filter={"number": ...}` but never trust the answer: an
#: item counts only if its own `number` equals the asked one. When a filtered answer holds other numbers, the filter
#: was ignored or misapplied on that endpoint and the adapter scans the unfiltered list instead, up to this many
#: items per look-up (setting `lookup_scan_limit`; pages of up to `MAX_PAGE_SIZE`, i.e. at most 25 requests).
DEFAULT_LOOKUP_SCAN_LIMIT: Final = 5000
#: INFERRED: "comparators are prepended to the value", list unknown; a number starting with one of these cannot be
#: sent as a plain equality filter, so such numbers are always looked up by the (bounded) scan.
FILTER_COMPARATOR_PREFIXES: Final = ("<", ">", "=", "!", "~", "%", "*")

#: INFERRED: how long (seconds) a contact found by number is reused for invoice creates (setting
#: `contact_cache_ttl`): long enough for one push, short enough that a contact edited elsewhere is seen soon.
CONTACT_CACHE_TTL: Final = 60.0
#: INFERRED: the 422 `meta.errors[].key` smallinvoice names when a unique `number` is already taken (the spec
#: calls contact and invoice `number` a "unique number"; the error's shape is not documented).
DUPLICATE_NUMBER_KEY: Final = "number"
