"""HTTP transport shared by every adapter: retries, write safety, rate limits, auth, redaction, logging."""

from .auth import (
    ApiKeyHeader,
    ApiKeyQuery,
    AuthStrategy,
    MemoryTokenStore,
    NoAuth,
    OAuth2Client,
    Token,
    TokenAuth,
    TokenStore,
    fingerprint,
    token_from_response,
)
from .http import ErrorInfo, FilePart, Request, Response, Transport, TransportConfig, default_error_info
from .ratelimit import (
    RateLimiter,
    RateLimitWaitTooLong,
    SlotWaitTimeout,
    Ticket,
    existing_limiter,
    limiter_for,
    parse_rate_headers,
)
from .redact import Redactor
from .retry import RetryPolicy, parse_retry_after

__all__ = [
    "ApiKeyHeader",
    "ApiKeyQuery",
    "AuthStrategy",
    "ErrorInfo",
    "FilePart",
    "MemoryTokenStore",
    "NoAuth",
    "OAuth2Client",
    "RateLimitWaitTooLong",
    "RateLimiter",
    "Redactor",
    "Request",
    "Response",
    "RetryPolicy",
    "SlotWaitTimeout",
    "Ticket",
    "Token",
    "TokenAuth",
    "TokenStore",
    "Transport",
    "TransportConfig",
    "default_error_info",
    "existing_limiter",
    "fingerprint",
    "limiter_for",
    "parse_rate_headers",
    "parse_retry_after",
    "token_from_response",
]
