"""`multiregnskab-s2s`: the Multi-Regnskab System-to-System API (per-company API key).

No public specification exists: every path, header name and field this adapter uses comes from
`s2s_contract.py` (documented there as inferred) and can be overridden per ledger through the settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from accounting_bridge import safety
from accounting_bridge.errors import (
    AccountingError,
    ConfigurationError,
    FieldError,
    ResponseError,
    ValidationError,
    WriteOutcomeUnknown,
)
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability
from accounting_bridge.models import BankTransaction, Document, Registration, RegistrationRef
from accounting_bridge.settings import CommonSettings, secret_field
from accounting_bridge.transport.auth import ApiKeyHeader
from accounting_bridge.transport.http import Request, Response, Transport

from . import wire
from .answers import read_written, unreadable_answer
from .customers import SharedCustomers
from .s2s_contract import DEFAULT_CONTRACT, S2SContract
from .submit_flow import submit_with_attachments

__all__ = ["MultiRegnskabS2SAdapter", "MultiRegnskabS2SSettings", "bank_submission_outcome"]

TRACE_HEADER = "X-MultiRegnskabTraceId"
_XID = re.compile("[0-9]{1,19}")


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
    credential_settings: ClassVar[str | None] = "api_key and company, and api_key_header / api_key_prefix"
    settings_class: ClassVar[type[Any]] = MultiRegnskabS2SSettings
    #: the local sandbox server, imported only by `accounting_bridge.sandbox.create`
    sandbox: ClassVar[str] = "accounting_bridge.adapters.multiregnskab.sandbox:MultiRegnskabSandbox"
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
        safety.setting_header_value(settings.api_key, "api_key", backend=self.name)  # sent as a header
        if isinstance(settings.company, bool) or not _XID.fullmatch(str(settings.company).strip()):
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
        headers = {}
        if settings.trace_id:
            headers[TRACE_HEADER] = safety.setting_header_value(settings.trace_id, "trace_id", backend=self.name)
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
        errors = wire.check_shared(item)
        if isinstance(item, BankTransaction):
            if not _XID.fullmatch(item.account.strip()):
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
            return read_written(
                response,
                lambda r: wire.xid_of(self._read(r, "file upload"), "file upload"),
                what="file upload",
                backend=self.name,
                reference=reference,
            )

        async def submit(file_xids: Sequence[int]) -> Response:
            payload = wire.encode_registration(registration, company_xid=self.company, file_xids=file_xids)
            headers = {TRACE_HEADER: safety.header_value(reference, "reference")} if reference else {}
            return await self._send("POST", submit_path, json=payload, reference=reference, headers=headers)

        def read_xid(response: Response) -> int:
            return wire.xid_of(self._read(response, "suggested registration"), "suggested registration")

        delete = None
        if self.contract.path("delete_file", companyXid=self.company, xid=0) is not None:

            async def delete(xid: int) -> None:
                await self._send("DELETE", self._path("delete_file", xid=xid))

        xid, files = await submit_with_attachments(
            registration, upload=upload, submit=submit, read_xid=read_xid, delete=delete, backend=self.name
        )
        return RegistrationRef(id=str(xid), reference=reference, raw={"xid": xid, "filesToAttachXids": files})

    # --- bank transactions -------------------------------------------------------------------------------------

    async def submit_bank_transactions(self, transactions: Sequence[BankTransaction]) -> list[BankTransaction]:
        """One request per bank account (in order of first appearance), stopping at the first failure. Not
        idempotent as far as is known, so nothing is resent.

        Every error raised here after validation carries the outcome per transaction (see
        `bank_submission_outcome`): `stored_transactions` (stored, with their ids), `unknown_transactions` (the
        group whose outcome is unknown) and `not_stored_transactions` (refused, or never sent). A definite refusal
        keeps its type (`NotFound`, `Unprocessable`, ...); when earlier groups were stored its message says which.
        An ambiguous failure, an accepted answer that cannot be read, or an answer acknowledging a different
        number of postings than were sent is `WriteOutcomeUnknown` with the group's references as `reference`.
        """
        groups: dict[str, list[BankTransaction]] = {}
        for transaction in transactions:
            groups.setdefault(transaction.account.strip(), []).append(transaction)
        batches = list(groups.items())
        result: list[BankTransaction] = []
        for index, (account, items) in enumerate(batches):
            later = [t for _account, rest in batches[index + 1 :] for t in rest]
            postings = [wire.encode_bank_posting(t) for t in items]
            payload = {"companyXid": self.company, "bankAccountXid": int(account), "bpList": postings}
            references = [t.reference for t in items if t.reference]
            reference = ",".join(references) if references else f"{len(items)} transactions for account {account}"
            try:
                response = await self._send("POST", self._path("bank_transactions"), json=payload, reference=reference)
            except WriteOutcomeUnknown as exc:
                message = exc.message.removesuffix(f" (reference {exc.reference!r})") if exc.reference else exc.message
                unknown = WriteOutcomeUnknown(
                    message, backend=exc.backend, reference=reference, request_id=exc.request_id
                )
                raise bank_submission_outcome(
                    unknown, stored=result, unknown=items, not_stored=later, multiple=len(batches) > 1
                ) from None
            except AccountingError as exc:
                raise bank_submission_outcome(
                    exc, stored=result, unknown=[], not_stored=[*items, *later], multiple=len(batches) > 1
                ) from None
            try:
                rows = wire.list_of(self._read(response, "bank transactions"), "bpList", "bank transactions")
                if len(rows) != len(items):
                    raise ResponseError(
                        f"bank transactions: {len(items)} sent, {len(rows)} acknowledged", backend=self.name
                    )
                ids = [wire.xid_of(row, "bank transaction") for row in rows]
            except AccountingError as exc:
                unknown = unreadable_answer(
                    response,
                    f"bank transactions for account {account}",
                    exc.message,
                    backend=self.name,
                    reference=reference,
                )
                raise bank_submission_outcome(
                    unknown, stored=result, unknown=items, not_stored=later, multiple=len(batches) > 1
                ) from None
            for item, posting, row, xid in zip(items, postings, rows, ids, strict=True):
                amount = wire.parse_money(posting["bankAmount"])  # as stored: at the currency's scale (øre)
                result.append(attrs.evolve(item, amount=amount, id=str(xid), raw=dict(row)))
        return result


def _label(transaction: BankTransaction) -> str:
    if transaction.reference:
        return repr(transaction.reference)
    return f"{transaction.date.isoformat()} {transaction.amount} on {transaction.account}"


def bank_submission_outcome(
    error: AccountingError,
    *,
    stored: Sequence[BankTransaction],
    unknown: Sequence[BankTransaction],
    not_stored: Sequence[BankTransaction],
    multiple: bool = True,
) -> AccountingError:
    """Attach the per-transaction outcome of a bank submission to `error` (documented attributes) and return it.

    - ``error.stored_transactions``: stored, each with its `id` (the server's xid) and `raw`;
    - ``error.unknown_transactions``: sent, outcome unknown (non-empty only on `WriteOutcomeUnknown`);
    - ``error.not_stored_transactions``: refused or never sent — safe to submit again.

    With several bank accounts (`multiple`), the message lists all three, so a log line alone tells the story.
    """
    error.stored_transactions = list(stored)  # type: ignore[attr-defined]
    error.unknown_transactions = list(unknown)  # type: ignore[attr-defined]
    error.not_stored_transactions = list(not_stored)  # type: ignore[attr-defined]
    if multiple:
        parts = [
            "stored: " + (", ".join(f"{_label(t)} (xid {t.id})" for t in stored) or "none"),
        ]
        if unknown:
            parts.append("outcome unknown: " + ", ".join(_label(t) for t in unknown))
        parts.append("not stored: " + (", ".join(_label(t) for t in not_stored) or "none"))
        summary = "; ".join(parts)
        if isinstance(error, WriteOutcomeUnknown) and error.reference:
            suffix = f" (reference {error.reference!r})"
            error.message = error.message.removesuffix(suffix) + f" [{summary}]" + suffix
        else:
            error.message = f"{error.message} [{summary}]"
        error.args = (error.message,)
    return error
