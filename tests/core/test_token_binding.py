"""A token is only used by a credential holding the secret it was obtained with (`TokenAuth(binding=...)`)."""

from __future__ import annotations

import itertools

import pytest

import accounting_bridge as ab
from accounting_bridge.transport import MemoryTokenStore, Token, TokenAuth, Transport, TransportConfig
from accounting_bridge.transport import auth as auth_module
from accounting_bridge.transport.auth import credential_binding

SECRET = "the-right-secret-value"


@pytest.fixture(autouse=True)
def no_tokens_of_earlier_tests() -> None:
    """Tokens are shared process-wide per key and binding: every test here starts with none."""
    with auth_module._REGISTRY_LOCK:
        auth_module._TOKENS.clear()

KEY = "app:client-1"


class Issuer:
    """Hands out numbered tokens; records which grant produced each."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counter = itertools.count(1)
        self.grants: list[str] = []

    async def obtain(self, _transport: Transport) -> Token:
        self.grants.append("obtain")
        n = next(self.counter)
        return Token(access_token=f"{self.name}-access-{n}", refresh_token=f"{self.name}-refresh-{n}")

    async def refresh(self, _transport: Transport, token: Token) -> Token:
        self.grants.append(f"refresh {token.refresh_token}")
        n = next(self.counter)
        return Token(access_token=f"{self.name}-access-{n}", refresh_token=f"{self.name}-refresh-{n}")


def transport_for(auth: TokenAuth) -> Transport:
    return Transport(TransportConfig(backend="binding-test", base_url="http://127.0.0.1:9"), auth=auth)


def binding(secret: str, host: str = "api.example.test") -> str:
    return credential_binding("app", "client-1", secret, host)


async def test_in_process_a_token_is_not_shared_with_another_secret() -> None:
    right, wrong = Issuer("right"), Issuer("wrong")
    first = TokenAuth(store_key=KEY, obtain=right.obtain, binding=binding(SECRET))
    second = TokenAuth(store_key=KEY, obtain=wrong.obtain, binding=binding("guessed"))
    assert (await first.token(transport_for(first))).access_token == "right-access-1"
    assert (await second.token(transport_for(second))).access_token == "wrong-access-1"  # its own grant
    assert wrong.grants == ["obtain"]
    same = TokenAuth(store_key=KEY, obtain=Issuer("same").obtain, binding=binding(SECRET))
    assert (await same.token(transport_for(same))).access_token == "right-access-1"  # same secret: shared


async def test_the_host_is_part_of_the_binding() -> None:
    assert binding(SECRET, "api.example.test") != binding(SECRET, "staging.example.test")
    assert binding(SECRET) == binding(SECRET)


def test_a_binding_reveals_no_secret() -> None:
    bound = binding(SECRET)
    assert SECRET not in bound and "client-1" not in bound
    assert bound.startswith("b1:") and len(bound) == 35


async def test_tokens_are_saved_with_their_binding() -> None:
    store = MemoryTokenStore()
    auth = TokenAuth(store_key=KEY, obtain=Issuer("right").obtain, store=store, binding=binding(SECRET))
    await auth.token(transport_for(auth))
    assert store.tokens[KEY].binding == binding(SECRET)


@pytest.mark.parametrize("stored_binding", [None, binding("someone-else")], ids=["unbound", "other-secret"])
async def test_a_stored_token_of_another_binding_only_lends_a_refresh_token_that_proves_the_secret(
    stored_binding: str | None,
) -> None:
    foreign = Token(access_token="foreign-access", refresh_token="foreign-refresh", binding=stored_binding)
    store = MemoryTokenStore({KEY: foreign})
    issuer = Issuer("ours")
    auth = TokenAuth(
        store_key=KEY,
        obtain=issuer.obtain,
        refresh=issuer.refresh,
        store=store,
        binding=binding(SECRET),
        refresh_proves_secret=True,
    )
    token = await auth.token(transport_for(auth))
    assert token.access_token == "ours-access-1"  # the foreign access token was never handed out
    assert issuer.grants == ["refresh foreign-refresh"]  # its refresh token, with our secret, was
    assert store.tokens[KEY] == token and token.binding == binding(SECRET)


@pytest.mark.parametrize("stored_binding", [None, binding("someone-else")], ids=["unbound", "other-secret"])
async def test_a_stored_token_of_another_binding_means_a_fresh_grant_when_refresh_proves_nothing(
    stored_binding: str | None,
) -> None:
    foreign = Token(access_token="foreign-access", refresh_token="foreign-refresh", binding=stored_binding)
    store = MemoryTokenStore({KEY: foreign})
    issuer = Issuer("ours")
    auth = TokenAuth(store_key=KEY, obtain=issuer.obtain, refresh=issuer.refresh, store=store, binding=binding(SECRET))
    token = await auth.token(transport_for(auth))
    assert token.access_token == "ours-access-1"
    assert issuer.grants == ["obtain"]  # a login afresh: the foreign refresh token was not used either


async def test_a_failed_grant_with_a_wrong_secret_leaves_the_stored_token_alone() -> None:
    store = MemoryTokenStore()
    right = TokenAuth(store_key=KEY, obtain=Issuer("right").obtain, store=store, binding=binding(SECRET))
    await right.token(transport_for(right))
    saved = store.tokens[KEY]

    async def refused(_transport: Transport) -> Token:
        raise ab.AuthenticationError("invalid_client")

    wrong = TokenAuth(store_key=KEY, obtain=refused, store=store, binding=binding("guessed"))
    with pytest.raises(ab.AuthenticationError):
        await wrong.token(transport_for(wrong))
    assert store.tokens[KEY] is saved and store.saves == 1
    assert await right.token(transport_for(right)) is saved  # the first credential keeps working


async def test_providers_never_see_each_others_tokens() -> None:
    async def alice() -> str:
        return "alice-token-value"

    async def mallory() -> str:
        return "mallory-token-value"

    first = TokenAuth.from_provider(alice, store_key="shared-name")
    second = TokenAuth.from_provider(mallory, store_key="shared-name")
    assert (await first.token(transport_for(first))).access_token == "alice-token-value"
    assert (await second.token(transport_for(second))).access_token == "mallory-token-value"


async def test_without_a_binding_only_the_same_token_source_shares_a_token() -> None:
    alice, mallory = Issuer("alice"), Issuer("mallory")
    first = TokenAuth(store_key="same-name", obtain=alice.obtain)
    again = TokenAuth(store_key="same-name", obtain=alice.obtain)  # the same issuer: one credential
    other = TokenAuth(store_key="same-name", obtain=mallory.obtain)
    assert (await first.token(transport_for(first))).access_token == "alice-access-1"
    assert (await again.token(transport_for(again))).access_token == "alice-access-1"
    assert (await other.token(transport_for(other))).access_token == "mallory-access-1"
