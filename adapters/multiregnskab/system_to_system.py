"""`multiregnskab-s2s`: the Multi-Regnskab System-to-System API (per-company API key).

No public specification exists: every path, header name and field this adapter uses comes from
`s2s_contract.py` (documented there as inferred) and can be overridden per ledger through the settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from accounting_bridge.errors import ConfigurationError, FieldError, ResponseError, ValidationError
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability
from accounting_bridge.models import BankTransaction, Customer, Document, Registration, RegistrationRef
from accounting_bridge.settings import CommonSettings, secret_field
from accounting_bridge.transport.auth import ApiKeyHeader
from accounting_bridge.transport.http import Request, Response, Transport

from . import wire
from .customers import SharedCustomers
from .s2s_contract import DEFAULT_CONTRACT, S2SContract
from .submit_flow import submit_with_attachments

__all__ = ["MultiRegnskabS2SAdapter", "MultiRegnskabS2SSettings"]

TRACE_HEADER = "X-MultiRegnskabTraceId"


@attrs.frozen(kw_only=True)
class MultiRegnskabS2SSettings(CommonSettings):
    """``ab.connect("multiregnskab-s2s", api_key=..., company=<companyXid>)`` plus contract overrides."""

    api_key: str = secret_field()
    company: int | str
    api_key_header: str | None = None
    api_key_prefix: str | None = None
    #: operation → path template, see `s2s_contract.INFERRED_PATHS`; "" disables an operation
    paths: Mapping[str, str | None] | None = None
    #: JSON key → key on the wire, see `s2s_contract.INFERRED_FIELDS`
    fields: Mapping[str, str] | None = None
    trace_id: str | None = None


class MultiRegnskabS2SAdapter(SharedCustomers, HttpAdapter):
    name: ClassVar[str] = "multiregnskab-s2s"
    settings_class: ClassVar[type[Any]] = MultiRegnskabS2SSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CUSTOMERS_LIST,
            Capability.CUSTOMERS_GET,
            Capability.CUSTOMERS_UPSERT,
            Capability.BANK_TRANSACTIONS_SUBMIT,
            Capability.REGISTRATIONS_SUBMIT,
            Capability.RAW,
        }
    )

    def __init__(self, settings: MultiRegnskabS2SSettings) -> None:
        if not isinstance(settings.api_key, str) or not settings.api_key:
            raise ConfigurationError("setting 'api_key' must be a non-empty string", backend=self.name)
        if not str(settings.company).strip().isdigit():
            raise ConfigurationError("setting 'company' must be the numeric companyXid", backend=self.name)
        self.settings = settings
        self.company = int(str(settings.company).strip())
        try:
            self.contract: S2SContract = DEFAULT_CONTRACT.with_overrides(
                base_url=settings.base_url,
                api_key_header=settings.api_key_header,
                api_key_prefix=settings.api_key_prefix,
                paths=settings.paths,
                fields=settings.fields,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(exc.message, backend=self.name) from None
        headers = {TRACE_HEADER: settings.trace_id} if settings.trace_id else {}
        config = settings.transport_config(self.name, self.contract.base_url, default_headers=headers)
        auth = ApiKeyHeader(settings.api_key, header=self.contract.api_key_header, prefix=self.contract.api_key_prefix)
        self.transport = Transport(config, auth=auth, session=settings.session)

    def __repr__(self) -> str:
        return f"<MultiRegnskabS2SAdapter company={self.company!r}>"

    # --- helpers -----------------------------------------------------------------------------------------------

    def _path(self, operation: str, **values: Any) -> str:
        path = self.contract.path(operation, companyXid=self.company, **values)
        if path is None:
            raise ConfigurationError(
                f"the S2S operation {operation!r} is disabled by a path override", backend=self.name
            )
        return path

    async def _send(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> Response:
        lookup = kwargs.pop("lookup", None)
        body = wire.rename_keys(json, self.contract.renames) if json is not None else None
        return await self.transport.send(Request(method, path, json=body, **kwargs), lookup=lookup)

    def _read(self, response: Response, what: str) -> Mapping[str, Any]:
        data = wire.rename_keys(response.json(), self.contract.inverse_renames)
        if not isinstance(data, Mapping):
            raise ResponseError(f"{what}: expected a JSON object", backend=self.name)
        return data

    # --- validation --------------------------------------------------------------------------------------------

    def validate(self, item: object) -> None:
        errors: list[FieldError] = []
        if isinstance(item, Registration):
            errors = wire.check_registration(item)
        elif isinstance(item, Customer):
            errors = wire.check_customer(item)
        elif isinstance(item, Document):
            errors = wire.check_document(item)
        elif isinstance(item, BankTransaction):
            if not item.account.strip().isdigit():
                errors.append(FieldError("account", "must be the numeric bankAccountXid"))
            if not item.text:
                errors.append(FieldError("text", "is required (bankText)"))
            exponent = item.amount.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -2:
                errors.append(FieldError("amount", "more than two decimals"))
        if errors:
            raise ValidationError(errors, backend=self.name, model=type(item).__name__)

    # --- customers (schema "Common in both APIs") --------------------------------------------------------------

    async def _customer_rows(self) -> list[Mapping[str, Any]]:
        response = await self._send("GET", self._path("customers_list"))
        return wire.list_of(self._read(response, "customers"), "customers", "customers")

    async def _customer_company(self) -> Any:
        return self.company

    async def _post_customer(self, payload: Mapping[str, Any], *, reference: str, lookup: Any) -> Response:
        return await self._send(
            "POST", self._path("customers_create"), json=payload, reference=reference, lookup=lookup
        )

    def _created_customer_body(self, response: Response) -> Any:
        return self._read(response, "create customer")

    # --- registrations -----------------------------------------------------------------------------------------

    async def submit_registration(self, registration: Registration) -> RegistrationRef:
        """Upload attachments (hidden until attached), submit once; see `submit_flow` for the cleanup rule."""
        reference = registration.reference
        upload_path = self._path("upload_file")
        submit_path = self._path("suggested_registrations")

        async def upload(document: Document) -> int:
            payload = wire.encode_file_upload(document, company_xid=self.company, keep_hidden=True)
            response = await self._send("POST", upload_path, json=payload, reference=reference)
            return wire.xid_of(self._read(response, "file upload"), "file upload")

        async def submit(file_xids: Sequence[int]) -> int:
            payload = wire.encode_registration(registration, company_xid=self.company, file_xids=file_xids)
            headers = {TRACE_HEADER: reference} if reference else {}
            response = await self._send("POST", submit_path, json=payload, reference=reference, headers=headers)
            return wire.xid_of(self._read(response, "suggested registration"), "suggested registration")

        delete = None
        if self.contract.path("delete_file", companyXid=self.company, xid=0) is not None:

            async def delete(xid: int) -> None:
                await self._send("DELETE", self._path("delete_file", xid=xid))

        xid, files = await submit_with_attachments(
            registration, upload=upload, submit=submit, delete=delete, backend=self.name
        )
        return RegistrationRef(id=str(xid), reference=reference, raw={"xid": xid, "filesToAttachXids": files})

    # --- bank transactions -------------------------------------------------------------------------------------

    async def submit_bank_transactions(self, transactions: Sequence[BankTransaction]) -> list[BankTransaction]:
        """One request per bank account (in order of first appearance). Not idempotent as far as is known: an
        ambiguous failure is `WriteOutcomeUnknown` naming the transactions' references."""
        groups: dict[str, list[BankTransaction]] = {}
        for transaction in transactions:
            groups.setdefault(transaction.account.strip(), []).append(transaction)
        result: list[BankTransaction] = []
        for account, items in groups.items():
            payload = {
                "companyXid": self.company,
                "bankAccountXid": int(account),
                "bpList": [wire.encode_bank_posting(t) for t in items],
            }
            references = [t.reference for t in items if t.reference]
            reference = ",".join(references) if references else f"{len(items)} transactions for account {account}"
            response = await self._send("POST", self._path("bank_transactions"), json=payload, reference=reference)
            rows = wire.list_of(self._read(response, "bank transactions"), "bpList", "bank transactions")
            if len(rows) != len(items):
                raise ResponseError(
                    f"bank transactions: {len(items)} sent, {len(rows)} acknowledged", backend=self.name
                )
            for item, row in zip(items, rows, strict=True):
                result.append(attrs.evolve(item, id=str(wire.xid_of(row, "bank transaction")), raw=dict(row)))
        return result
