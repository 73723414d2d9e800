"""accounting_bridge: one neutral async interface over several accounting systems.

    import accounting_bridge as ab
    async with ab.connect("memory") as ledger:
        await ledger.customers.upsert(ab.Customer(number="K-001", name="Muster AG"))
"""

from .converter import from_dict, from_json, to_dict, to_json
from .errors import (
    AccountingError,
    AuthenticationError,
    BackendError,
    ConfigurationError,
    Conflict,
    DeadlineExceeded,
    FieldError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResponseError,
    ServerError,
    TransportError,
    Unprocessable,
    UnsupportedOperation,
    ValidationError,
    WriteOutcomeUnknown,
)
from .ledger import Adapter, AdapterBase, Capability, Company, Ledger
from .models import (
    Address,
    BankTransaction,
    Customer,
    CustomerKind,
    Document,
    DocumentRef,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentKind,
    PostingLine,
    Registration,
    RegistrationRef,
    TaxLine,
)
from .registry import available, connect, register, unregister
from .sync import LedgerPool, SyncReport, pull, push
from .transport import MemoryTokenStore, Token, TokenStore

__version__ = "0.1.0"

__all__ = [
    "AccountingError",
    "Adapter",
    "AdapterBase",
    "Address",
    "AuthenticationError",
    "BackendError",
    "BankTransaction",
    "Capability",
    "Company",
    "ConfigurationError",
    "Conflict",
    "Customer",
    "CustomerKind",
    "DeadlineExceeded",
    "Document",
    "DocumentRef",
    "FieldError",
    "Invoice",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceStatus",
    "Ledger",
    "LedgerPool",
    "MemoryTokenStore",
    "NotFound",
    "Payment",
    "PaymentKind",
    "PermissionDenied",
    "PostingLine",
    "RateLimited",
    "Registration",
    "RegistrationRef",
    "ResponseError",
    "ServerError",
    "SyncReport",
    "TaxLine",
    "Token",
    "TokenStore",
    "TransportError",
    "Unprocessable",
    "UnsupportedOperation",
    "ValidationError",
    "WriteOutcomeUnknown",
    "available",
    "connect",
    "from_dict",
    "from_json",
    "pull",
    "push",
    "register",
    "to_dict",
    "to_json",
    "unregister",
]
