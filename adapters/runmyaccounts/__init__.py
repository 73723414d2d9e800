"""The `runmyaccounts` adapter: Run my Accounts REST API (XML and mapped JSON), with a local sandbox server."""

from .adapter import DEFAULT_BASE_URL, SANDBOX_BASE_URL, RunMyAccountsAdapter, RunMyAccountsSettings
from .records import AccountTransaction, Beleg, Chart, Department, Part, Payable, Project, SaldoRow, Vendor

__all__ = [
    "DEFAULT_BASE_URL",
    "SANDBOX_BASE_URL",
    "AccountTransaction",
    "Beleg",
    "Chart",
    "Department",
    "Part",
    "Payable",
    "Project",
    "RunMyAccountsAdapter",
    "RunMyAccountsSettings",
    "SaldoRow",
    "Vendor",
]
