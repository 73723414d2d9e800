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
from .ratelimit import RateLimiter, limiter_for, parse_rate_headers
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
    "RateLimiter",
    "Redactor",
    "Request",
    "Response",
    "RetryPolicy",
    "Token",
    "TokenAuth",
    "TokenStore",
    "Transport",
    "TransportConfig",
    "default_error_info",
    "fingerprint",
    "limiter_for",
    "parse_rate_headers",
    "parse_retry_after",
    "token_from_response",
]
