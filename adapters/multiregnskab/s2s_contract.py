"""The System-to-System API contract as INFERRED — every guessed path, header, field and format in one place.

Multi-Regnskab publishes no specification of its System-to-System API (only vendor prose: a per-company API key
pasted into the external system; suggested registrations with attachments; bank transactions for
reconciliation; customers). Everything below is an inference from the Public Client API v1.0.17:

* base URL: by analogy with ``/open/clientapi/v1``                                     [INFERRED]
* API key header ``X-Api-Key`` without prefix                                          [INFERRED]
* paths: the Public Client paths for the same operations, bank submission at
  ``POST /bankPostings`` with the read shape `BankPosting` in a ``bpList``             [INFERRED]
* Customer schema: marked "Common in both APIs" in the Public Client spec               [VERIFIED that it is marked]
* Registration, DebitCreditLine, FileUpload: same keys as the Public Client              [INFERRED]
* money as Danish strings ("9.999,99")                                                 [INFERRED]

Every item can be overridden per ledger without code changes: ``ab.connect("multiregnskab-s2s", ...,
base_url=..., api_key_header="Authorization", api_key_prefix="Bearer ", paths={"bank_transactions": "/bank"},
fields={"debitCreditlines": "debitCreditLines"})``. `fields` renames JSON keys in both directions (requests are
written with the renamed keys; responses are read back through the inverse mapping). The S2S sandbox is built
from the same contract, so a test can run adapter and sandbox on an overridden contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from accounting_bridge import safety
from accounting_bridge.errors import ConfigurationError

__all__ = ["DEFAULT_CONTRACT", "INFERRED_FIELDS", "INFERRED_PATHS", "S2SContract"]

DEFAULT_BASE_URL = "https://www.multiregnskab.dk/open/systemapi/v1"  # [INFERRED]

#: operation → path template ({companyXid}, {xid} are filled in). [INFERRED]
INFERRED_PATHS: Mapping[str, str] = {
    "upload_file": "/filesForUseInRegistrations",
    "delete_file": "/archiveFile/{companyXid}/{xid}",
    "suggested_registrations": "/suggestedRegistrations",
    "customers_list": "/customers/{companyXid}",
    "customers_create": "/customers",
    "bank_transactions": "/bankPostings",
}

#: Every JSON key the S2S adapter writes or reads, mapped to itself by default. [INFERRED]
#: Override a value to rename that key on the wire, e.g. {"debitCreditlines": "debitCreditLines"}.
INFERRED_FIELDS: Mapping[str, str] = {
    name: name
    for name in (
        # common
        "companyXid",
        "xid",
        # FileUpload
        "fileBodyBase64",
        "contentType",
        "fileName",
        "friendlyFilename",
        "keepHiddenUntilRegistration",
        "date",
        # Registration / DebitCreditLine
        "description",
        "debitCreditlines",
        "accountNumber",
        "vatCode",
        "amount",
        "filesToAttachXids",
        # bank transaction submission (BankPosting shape)
        "bankAccountXid",
        "bpList",
        "bankDate",
        "bankText",
        "bankAmount",
        "extraBankText",
        "externalRef",
        # customers (shared schema; listed so it can be renamed too)
        "customers",
    )
}


@attrs.frozen(kw_only=True)
class S2SContract:
    """The inferred S2S contract, with per-ledger overrides applied."""

    base_url: str = DEFAULT_BASE_URL
    api_key_header: str = "X-Api-Key"  # [INFERRED]
    api_key_prefix: str = ""  # [INFERRED]
    paths: Mapping[str, str] = attrs.field(factory=lambda: dict(INFERRED_PATHS))
    fields: Mapping[str, str] = attrs.field(factory=lambda: dict(INFERRED_FIELDS))

    def with_overrides(
        self,
        *,
        base_url: str | None = None,
        api_key_header: str | None = None,
        api_key_prefix: str | None = None,
        paths: Mapping[str, str | None] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> S2SContract:
        """A copy with the given items replaced; unknown path or field names raise `ConfigurationError`.

        A path overridden with "" or None disables that operation (e.g. no delete endpoint: uploads of a failed
        submission are then left for the user to remove in Multi-Regnskab).
        """
        new_paths = dict(self.paths)
        for name, value in (paths or {}).items():
            if name not in INFERRED_PATHS:
                raise ConfigurationError(
                    f"unknown S2S path override {name!r}; known: {', '.join(sorted(INFERRED_PATHS))}"
                )
            new_paths[name] = value or ""
        new_fields = dict(self.fields)
        for name, value in (fields or {}).items():
            if name not in INFERRED_FIELDS:
                raise ConfigurationError(
                    f"unknown S2S field override {name!r}; known: {', '.join(sorted(INFERRED_FIELDS))}"
                )
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"S2S field override {name!r} must be a non-empty string")
            new_fields[name] = value
        if api_key_header is not None and not safety.HEADER_NAME.fullmatch(api_key_header):
            raise ConfigurationError("setting 'api_key_header' must be an HTTP header name (letters, digits, '-')")
        if api_key_prefix is not None:
            safety.setting_header_value(api_key_prefix, "api_key_prefix")
        return attrs.evolve(
            self,
            base_url=base_url or self.base_url,
            api_key_header=api_key_header or self.api_key_header,
            api_key_prefix=self.api_key_prefix if api_key_prefix is None else api_key_prefix,
            paths=new_paths,
            fields=new_fields,
        )

    def path(self, operation: str, **values: Any) -> str | None:
        """The path of `operation` with its placeholders filled (each value one path segment), or None when the
        operation is disabled."""
        template = self.paths.get(operation) or ""
        if not template:
            return None
        return template.format(**{k: safety.path_segment(str(v), k) for k, v in values.items()})

    @property
    def renames(self) -> dict[str, str]:
        """Public-Client key → S2S key, only the keys that differ."""
        return {k: v for k, v in self.fields.items() if k != v}

    @property
    def inverse_renames(self) -> dict[str, str]:
        return {v: k for k, v in self.renames.items()}

    def key(self, name: str) -> str:
        return self.fields.get(name, name)


DEFAULT_CONTRACT = S2SContract()
