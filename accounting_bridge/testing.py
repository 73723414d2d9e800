"""Helpers for tests and sandboxes: small stand-ins that real code paths can carry."""

from __future__ import annotations

__all__ = ["minimal_pdf"]


def minimal_pdf(text: str) -> bytes:
    """A tiny, structurally valid one-page PDF whose body carries `text` as a comment (sandbox PDFs, payslips)."""
    safe = "".join(ch for ch in text if ch.isprintable() and ch not in "\\()")
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        + f"% {safe}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
