"""Profiles: a mapping or a TOML file, secrets by `{ env = "VAR" }`, errors that name what to fix (never a value)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import accounting_bridge as ab
from accounting_bridge.registry import load as load_adapter
from accounting_bridge.settings import secret_settings
from accounting_bridge.sync.profiles import EnvRef, load_profiles, read_profiles

SECRET_VALUE = "s3cr3t-value-never-shown"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_a_toml_file_resolves_env_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [acme]
        backend = "smallinvoice"
        client_id = "acme-app"
        client_secret = { env = "ACME_SECRET" }
        timeout = 30

        [books]
        backend = "memory"
        company = "Books AG"
        """,
    )
    profiles = load_profiles(path, environ={"ACME_SECRET": SECRET_VALUE})
    assert profiles == {
        "acme": {"backend": "smallinvoice", "client_id": "acme-app", "client_secret": SECRET_VALUE, "timeout": 30},
        "books": {"backend": "memory", "company": "Books AG"},
    }


def test_references_are_kept_until_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, '[a]\nbackend = "runmyaccounts"\ntenant = "t"\napi_key = { env = "RMA_KEY_42" }\n')
    profile = read_profiles(path)["a"]
    assert profile.settings["api_key"] == EnvRef("RMA_KEY_42")
    assert profile.origin == str(path)
    assert "RMA_KEY_42" not in repr(profile)


def test_a_missing_variable_names_profile_setting_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[acme]\nbackend = "runmyaccounts"\ntenant = "t"\napi_key = { env = "RMA_KEY_42" }\n')
    with pytest.raises(ab.ConfigurationError) as caught:
        load_profiles(path, environ={})
    message = str(caught.value)
    assert "'acme'" in message and "'api_key'" in message and "'RMA_KEY_42'" in message
    assert str(path) in message


@pytest.mark.parametrize(
    ("backend", "setting", "extra"),
    [
        ("runmyaccounts", "api_key", 'tenant = "t"'),
        ("smallinvoice", "client_secret", 'client_id = "c"'),
        ("smallinvoice", "refresh_token", 'client_id = "c"\nclient_secret = { env = "X" }'),
        ("multiregnskab", "password", 'username = "u"'),
        ("multiregnskab-s2s", "api_key", 'company = "1"'),
    ],
)
def test_an_inline_secret_in_a_file_is_refused_without_showing_it(
    tmp_path: Path, backend: str, setting: str, extra: str
) -> None:
    path = write(tmp_path, f'[live]\nbackend = "{backend}"\n{extra}\n{setting} = "{SECRET_VALUE}"\n')
    with pytest.raises(ab.ConfigurationError) as caught:
        read_profiles(path)
    message = str(caught.value)
    assert f"'{setting}'" in message and "'live'" in message and "sandbox = true" in message
    assert SECRET_VALUE not in message


def test_a_sandbox_table_may_hold_inline_credentials(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [sandbox-runmyaccounts]
        backend = "runmyaccounts"
        sandbox = true
        base_url = "http://127.0.0.1:8080/api/latest/clients/"
        tenant = "demo"
        api_key = "{SECRET_VALUE}"
        """,
    )
    profile = load_profiles(path)["sandbox-runmyaccounts"]
    assert profile["api_key"] == SECRET_VALUE
    assert "sandbox" not in profile


def test_a_mapping_is_taken_as_given_and_resolves_env_too() -> None:
    profiles = {
        "t1": {"backend": "runmyaccounts", "tenant": "t1", "api_key": SECRET_VALUE},
        "t2": {"backend": "runmyaccounts", "tenant": "t2", "api_key": {"env": "T2_KEY"}},
    }
    loaded = load_profiles(profiles, environ={"T2_KEY": "k2"})
    assert loaded["t1"]["api_key"] == SECRET_VALUE
    assert loaded["t2"]["api_key"] == "k2"


def test_bad_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[acme]\nbackend = "memory"\ncompany = Books AG\n')
    with pytest.raises(ab.ConfigurationError) as caught:
        read_profiles(path)
    message = str(caught.value)
    assert str(path) in message and "line 3" in message
    assert "Books" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "x"\n', "profile 'name' must be a table"),
        ("[acme]\ncompany = 'x'\n", "profile 'acme': backend"),
        ('[acme]\nbackend = "nope"\n', "no adapter named 'nope'"),
        ('[acme]\nbackend = "memory"\nsandbox = "yes"\n', "sandbox must be true or false"),
        ('[acme]\nbackend = "memory"\ncompany = { env = "A", default = "x" }\n', "setting 'company': a table value"),
        ('[acme]\nbackend = "memory"\ncompany = { env = "" }\n', "setting 'company': a table value"),
    ],
)
def test_malformed_profiles_say_what_to_fix(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ab.ConfigurationError, match=expected) as caught:
        read_profiles(path)
    assert str(path) in str(caught.value)


def test_a_session_cannot_come_from_a_profile() -> None:
    with pytest.raises(ab.ConfigurationError, match="'session' cannot be given in a profile"):
        read_profiles({"a": {"backend": "memory", "session": object()}})


def test_a_missing_or_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ab.ConfigurationError, match="does not exist"):
        read_profiles(tmp_path / "absent.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[a]\nbackend = "memory"\ncompany = "M\xfcller"\n')
    with pytest.raises(ab.ConfigurationError, match="not UTF-8"):
        read_profiles(tmp_path / "latin1.toml")
    with pytest.raises(ab.ConfigurationError, match="expected a mapping or the path"):
        read_profiles(42)  # type: ignore[arg-type]


def test_secret_settings_are_declared_once_per_adapter() -> None:
    secrets = {name: secret_settings(load_adapter(name).settings_class) for name in ab.available()}
    assert secrets["runmyaccounts"] == {"api_key"}
    assert secrets["smallinvoice"] == {"client_secret", "refresh_token"}
    assert secrets["multiregnskab"] == {"password"}
    assert secrets["multiregnskab-s2s"] == {"api_key"}
    assert secrets["memory"] == frozenset()


def test_a_misspelt_backend_key_is_named_as_the_likely_typo() -> None:
    with pytest.raises(ab.ConfigurationError) as caught:
        load_profiles({"acme": {"backnd": "memory"}})
    assert "`backnd` meant to be `backend`" in caught.value.message
