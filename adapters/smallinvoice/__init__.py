"""The `smallinvoice` adapter (smallinvoice API v2: OAuth2 bearer tokens, `X-Rate-Limit-*` headers) and its sandbox."""

from .adapter import CAPABILITIES, SmallInvoiceAdapter, SmallInvoiceSettings, token_binding
from .constants import PRODUCTION_URL, STAGING_URL

__all__ = [
    "CAPABILITIES",
    "PRODUCTION_URL",
    "STAGING_URL",
    "SmallInvoiceAdapter",
    "SmallInvoiceSettings",
    "token_binding",
]
