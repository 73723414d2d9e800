"""Validates recorded exchanges against a vendor's OpenAPI document; differences are explained by named errata."""

from __future__ import annotations

import fnmatch
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from .recorder import Exchange

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

SPECS = Path(__file__).parent / "specs"  # copies of shared/backends/specs (the vendors' documents, unchanged)
ERRATA = Path(__file__).parent / "errata"


def spec_path(name: str) -> Path:
    return SPECS / name


@attrs.frozen
class Finding:
    """One difference between an exchange and the spec."""

    operation: str  # "GET /contacts/{contactId}" (the spec's path template)
    part: str  # "request" or "response"
    field: str  # where in the body or parameters ("items/0/fax", "query.with"; "" = the whole part)
    message: str

    def __str__(self) -> str:
        return f"{self.operation} {self.part} {self.field or '-'}: {self.message}"


@attrs.frozen
class Erratum:
    name: str
    operation: str
    part: str
    fields: tuple[str, ...]  # globs over `Finding.field`; each one must explain a finding (`unused`)
    message: str
    spec: str
    real: str
    source: str
    rewrite: str | None = None  # a correction applied to the spec before validating (`REWRITES`)

    def field_explaining(self, finding: Finding) -> str | None:
        """The glob of `fields` under which this erratum explains `finding`, else None."""
        if self.rewrite is not None or not fnmatch.fnmatchcase(finding.operation, self.operation):
            return None
        if self.part not in (finding.part, "*") or re.search(self.message, finding.message) is None:
            return None
        return next((glob for glob in self.fields if fnmatch.fnmatchcase(finding.field, glob)), None)


def load_errata(backend: str) -> list[Erratum]:
    data = tomllib.loads((ERRATA / f"{backend}.toml").read_text(encoding="utf-8"))
    errata = []
    for name, entry in data.items():
        missing = {"operation", "spec", "real", "source"} - set(entry)
        assert not missing, f"erratum {name!r} lacks {sorted(missing)}"
        assert ("message" in entry) != ("rewrite" in entry), f"erratum {name!r}: give `message` or `rewrite`"
        assert entry.get("rewrite") in (None, *REWRITES), f"erratum {name!r}: unknown rewrite"
        assert not ("field" in entry and "fields" in entry), f"erratum {name!r}: give `field` or `fields`"
        fields = entry.get("fields", [entry.get("field", "*")])
        assert fields and all(isinstance(f, str) for f in fields), f"erratum {name!r}: `fields` lists globs"
        errata.append(
            Erratum(
                name=name,
                operation=entry["operation"],
                part=entry.get("part", "*"),
                fields=tuple(fields),
                message=entry.get("message", ""),
                spec=entry["spec"],
                real=entry["real"],
                source=entry["source"],
                rewrite=entry.get("rewrite"),
            )
        )
    return errata


#: Spec mistakes that hide every difference behind them, so they are corrected before validating (each one is
#: also a named erratum with `rewrite = "<name>"` in the backend's errata file, which is what enables it).
def _wildcard_request_bodies_are_json(spec: dict[str, Any]) -> int:
    """`requestBody.content."*/*"` → `application/json` (openapi-core leaves a `*/*` body undecoded bytes)."""
    changed = 0
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            if "*/*" in content and "application/json" not in content:
                content["application/json"] = content.pop("*/*")
                changed += 1
    return changed


def _string_keys(value: Any) -> Any:
    """YAML reads `200:` as an int; JSON (and the spec validator) has string keys only."""
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value


def _token_endpoint_answers_200(spec: dict[str, Any]) -> int:
    """`POST /auth/access-tokens` also answers 200 with the body it documents for 201, so that body is checked."""
    responses = spec.get("paths", {}).get("/auth/access-tokens", {}).get("post", {}).get("responses", {})
    if "201" not in responses or "200" in responses:
        return 0
    responses["200"] = responses["201"]
    return 1


REWRITES = {
    "wildcard-request-bodies-are-json": _wildcard_request_bodies_are_json,
    "token-endpoint-answers-200": _token_endpoint_answers_200,
}


@cache
def openapi(name: str, rewrites: tuple[str, ...] = (), strict_responses: bool = False) -> tuple[Any, frozenset[str]]:
    """The validated spec, with `rewrites` applied; also which rewrites changed anything. Requests may never
    carry undeclared fields; with `strict_responses` neither may answers (for a vendor's own spec)."""
    import yaml
    from openapi_core import OpenAPI  # the test extra; imported only by the contract tests

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = _string_keys(yaml.load(spec_path(name).read_text(encoding="utf-8"), Loader=loader))  # noqa: S506 - a safe loader
    used = frozenset(rewrite for rewrite in rewrites if REWRITES[rewrite](spec))
    _no_body_means_no_content(spec)
    _declare_every_field(spec, responses_too=strict_responses)
    return OpenAPI.from_dict(spec), used


def _no_body_means_no_content(spec: dict[str, Any]) -> None:
    """`content: {}` (a response without a body) as openapi-core understands it: no `content` at all."""
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values() if isinstance(operation, dict) else ():
                if response.get("content") == {}:
                    del response["content"]


def _declare_every_field(spec: dict[str, Any], *, responses_too: bool) -> None:
    """Strict requests: a field the request schema does not declare is a finding (`additionalProperties: false`
    on every object schema used only by request bodies), so an adapter cannot send what the API would ignore.
    `responses_too`: the same for every schema (a sandbox answering a field the vendor does not document)."""
    schemas = spec.get("components", {}).get("schemas", {})
    requests: set[str] = set()
    responses: set[str] = set()
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                _refs(operation.get("requestBody", {}), schemas, requests)
                _refs(operation.get("responses", {}), schemas, responses)
    for name in requests | responses if responses_too else requests - responses:
        schema = schemas[name]
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False


def _refs(node: Any, schemas: dict[str, Any], found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _refs(schemas.get(name), schemas, found)
        for value in node.values():
            _refs(value, schemas, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, schemas, found)


class Oracle:
    """One spec, served at `server_url` (a URL of the spec's `servers`), checked against exchanges whose paths
    start with `prefix` (the sandbox's mount point of the API)."""

    def __init__(
        self, spec: str, errata: list[Erratum], *, server_url: str, prefix: str, strict_responses: bool = False
    ) -> None:
        rewrites = tuple(sorted(e.rewrite for e in errata if e.rewrite))
        self.api, self.rewritten = openapi(spec, rewrites, strict_responses)
        split = urlsplit(server_url.rstrip("/"))
        self.host_url = f"{split.scheme}://{split.netloc}"
        self.server_path = split.path  # the spec's base path, e.g. /v2
        self.prefix = prefix.rstrip("/")  # where the sandbox mounts the API
        self._templates = self._path_templates()
        self.checked: Counter[tuple[str, str]] = Counter()  # (operation, "request" | "response") -> validated

    def _path_templates(self) -> list[tuple[re.Pattern[str], str, frozenset[str]]]:
        templates = []
        for template, item in (self.api.spec / "paths").items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            methods = frozenset(str(m).upper() for m in item.keys())  # noqa: SIM118 - a SchemaPath, not a dict
            templates.append((re.compile(f"^{pattern}$"), template, methods))
        # literal segments first: /contacts/letters before /contacts/{contactId}
        templates.sort(key=lambda t: (t[1].count("{"), -len(t[1])))
        return templates

    def operation(self, exchange: Exchange) -> str:
        path = exchange.path[len(self.prefix) :]
        candidates = [template for pattern, template, _ in self._templates if pattern.match(path)]
        with_method = [t for p, t, methods in self._templates if p.match(path) and exchange.method in methods]
        if with_method or candidates:
            return f"{exchange.method} {(with_method or candidates)[0]}"
        return f"{exchange.method} {path} (no such path in the spec)"

    @staticmethod
    def _path_arguments(path: str, template: str) -> dict[str, str]:
        names = re.findall(r"\{([^}]+)\}", template)
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
        match = re.match(f"^{pattern}$", path)
        return dict(zip(names, match.groups(), strict=True)) if match else {}

    def findings(self, exchanges: Iterable[Exchange]) -> Iterator[Finding]:
        """Every difference of every exchange; `checked` counts the validated requests and answers by operation
        (so a test can prove each operation was seen, and that nothing was left out)."""
        for exchange in exchanges:
            if not exchange.path.startswith(self.prefix + "/"):
                yield Finding(f"{exchange.method} {exchange.path}", "request", "", "outside the spec's API")
                continue
            operation = self.operation(exchange)
            request, response = self._mocks(exchange, operation)
            yield from self._undeclared_query(exchange, operation)
            for error in self.api.iter_request_errors(request):
                yield from _flatten(operation, "request", error)
            self.checked[operation, "request"] += 1
            for error in self.api.iter_response_errors(request, response):
                yield from _flatten(operation, "response", error)
            self.checked[operation, "response"] += 1

    def _undeclared_query(self, exchange: Exchange, operation: str) -> Iterator[Finding]:
        """Query parameters the operation does not declare (openapi-core ignores them)."""
        method, template = operation.split(" ", 1)
        if "(no such path" in template:
            return
        item = self.api.spec / "paths" / template
        declared = set()
        for owner in (item, item / method.lower()) if method.lower() in item else (item,):
            if "parameters" in owner:
                declared |= {str(p["name"]) for p in owner / "parameters" if str(p["in"]) == "query"}
        for name, _ in exchange.query:
            if name not in declared:
                yield Finding(operation, "request", f"query.{name}", "undeclared query parameter")

    def _mocks(self, exchange: Exchange, operation: str) -> tuple[Any, Any]:
        from openapi_core.testing import MockRequest, MockResponse
        from werkzeug.datastructures import ImmutableMultiDict

        path = self.server_path + exchange.path[len(self.prefix) :]
        template = operation.split(" ", 1)[1]
        request = MockRequest(
            self.host_url,
            exchange.method,
            path,
            path_pattern=None if "(no such path" in template else self.server_path + template,
            view_args=self._path_arguments(exchange.path[len(self.prefix) :], template),
            headers=exchange.request_headers,
            data=exchange.request_body or None,
            content_type=exchange.request_content_type or "application/json",
        )
        request.parameters.query = ImmutableMultiDict(list(exchange.query))
        response = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            headers=exchange.response_headers,
            content_type=exchange.response_content_type,
        )
        return request, response


def _flatten(operation: str, part: str, error: BaseException) -> Iterator[Finding]:
    """An openapi-core error as findings: one per JSON-schema error inside it, else the error itself."""
    schema_errors = _schema_errors(error)
    if not schema_errors:
        yield Finding(operation, part, _parameter(error), _message(error))
        return
    for schema_error in schema_errors:
        field = "/".join(str(p) for p in schema_error.absolute_path)
        yield Finding(operation, part, field, schema_error.message)


def _schema_errors(error: BaseException | None) -> list[Any]:
    seen = 0
    while error is not None and seen < 5:
        found = getattr(error, "schema_errors", None)
        if found:
            return list(found)
        error = error.__cause__ or error.__context__
        seen += 1
    return []


def _parameter(error: BaseException) -> str:
    name = getattr(error, "name", None)
    location = getattr(error, "location", None)
    return f"{location}.{name}" if name and location else ""


def _message(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    if cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
    return " <- ".join(parts)


def unexplained(oracle: Oracle, findings: Iterable[Finding], errata: list[Erratum]) -> tuple[list[Finding], set[str]]:
    """The findings no erratum explains, and what explained something: erratum names, and `name[glob]` for each
    field glob that did (also the names of the errata whose spec correction changed the spec)."""
    left: list[Finding] = []
    used = {e.name for e in errata if e.rewrite in oracle.rewritten}
    for finding in findings:
        explaining = [(e.name, glob) for e in errata if (glob := e.field_explaining(finding)) is not None]
        used.update(name for name, _ in explaining)
        used.update(f"{name}[{glob}]" for name, glob in explaining)
        if not explaining:
            left.append(finding)
    return left, used


def unused(errata: list[Erratum], used: set[str]) -> list[str]:
    """Errata, and field globs of errata, that explained nothing: a stale or too broad entry fails the test."""
    stale = [e.name for e in errata if e.name not in used]
    stale += [
        f"{e.name}[{glob}]" for e in errata if not e.rewrite for glob in e.fields if f"{e.name}[{glob}]" not in used
    ]
    return stale
