"""What is particular to PostgresJournal: its URL's password never shows, whatever psycopg makes of the URL."""

from __future__ import annotations

import pytest

from accounting_bridge import ConfigurationError
from accounting_bridge.sync.postgres import PostgresJournal

SECRET = "pw%zzS3cr3t"  # a bad percent-escape: libpq's complaint quotes it


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{SECRET}@127.0.0.1:1/db",
        f"postgresql://user:{SECRET}@[::1/db",
        f"postgres://user@127.0.0.1:1/db?password={SECRET}",
    ],
)
async def test_a_bad_url_never_shows_its_password_in_errors_or_repr(url: str) -> None:
    journal = PostgresJournal(url)
    assert "S3cr3t" not in repr(journal)
    with pytest.raises(ConfigurationError) as caught:
        await journal.open()
    assert "S3cr3t" not in str(caught.value)
