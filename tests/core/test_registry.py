"""Adapter discovery through entry points, `connect`, and strict settings."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

import accounting_bridge as ab
from accounting_bridge.ledger import AdapterBase
from accounting_bridge.settings import CommonSettings, secret_field


def test_unknown_adapter_lists_the_installed_ones() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("nonexistent")
    text = str(info.value)
    assert "nonexistent" in text
    for name in ("memory", "runmyaccounts", "smallinvoice", "multiregnskab", "multiregnskab-s2s"):
        assert name in text


def _install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, body: str) -> None:
    """A third-party distribution with an entry point in our group, installed as pip would: dist-info on sys.path."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[accounting_bridge.adapters]\nplugin-ledger = {module}:PluginAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)


PLUGIN = """
    from typing import Any, ClassVar
    import attrs
    from accounting_bridge.ledger import AdapterBase, Capability
    from accounting_bridge.settings import CommonSettings

    @attrs.frozen(kw_only=True)
    class PluginSettings(CommonSettings):
        shop: str

    class PluginAdapter(AdapterBase):
        name: ClassVar[str] = "plugin-ledger"
        settings_class: ClassVar[type[Any]] = PluginSettings
        capabilities = frozenset({Capability.CUSTOMERS_GET})

        def __init__(self, settings: PluginSettings) -> None:
            self.settings = settings

        async def get_customer(self, number: str):
            import accounting_bridge as ab
            return ab.Customer(number=number, name=f"from {self.settings.shop}")
"""


async def test_adapter_from_a_third_party_entry_point_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_plugin(tmp_path, monkeypatch, "ab_plugin_demo", PLUGIN)
    assert "plugin-ledger" in ab.available()
    async with ab.connect("plugin-ledger", shop="Laden") as ledger:
        customer = await ledger.customers.get("K-9")
        assert customer.name == "from Laden"
        with pytest.raises(ab.UnsupportedOperation):
            ledger.invoices.list()


def test_broken_entry_point_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_plugin(tmp_path, monkeypatch, "ab_plugin_broken", "raise ImportError('missing dependency zeep')\n")
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("plugin-ledger", shop="x")
    assert "could not be loaded" in str(info.value) and "zeep" in str(info.value)


@attrs.frozen(kw_only=True)
class KeySettings(CommonSettings):
    tenant: str = attrs.field(validator=attrs.validators.instance_of(str))
    api_key: str = secret_field(validator=attrs.validators.instance_of(str))


class KeyAdapter(AdapterBase):
    name: ClassVar[str] = "keyed"
    settings_class: ClassVar[type[Any]] = KeySettings

    def __init__(self, settings: KeySettings) -> None:
        self.settings = settings


@pytest.fixture
def keyed() -> Any:
    ab.register("keyed", KeyAdapter)  # type: ignore[arg-type]
    yield
    ab.unregister("keyed")


@pytest.mark.usefixtures("keyed")
def test_missing_and_unknown_settings_are_named() -> None:
    with pytest.raises(ab.ConfigurationError) as missing:
        ab.connect("keyed", tenant="muster")
    assert "api_key" in str(missing.value) and "missing" in str(missing.value)
    with pytest.raises(ab.ConfigurationError) as unknown:
        ab.connect("keyed", tenant="muster", api_key="k" * 20, apikey="typo")
    assert "apikey" in str(unknown.value) and "accepted" in str(unknown.value)


@pytest.mark.usefixtures("keyed")
def test_wrongly_typed_secret_is_named_without_its_value() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("keyed", tenant="muster", api_key=987654321987)
    assert "api_key" in str(info.value) and "987654321987" not in str(info.value)


@pytest.mark.usefixtures("keyed")
def test_common_settings_are_checked() -> None:
    with pytest.raises(ab.ConfigurationError) as info:
        ab.connect("keyed", tenant="muster", api_key="k" * 20, max_retries=-1)
    assert "max_retries" in str(info.value)
    ledger = ab.connect("keyed", tenant="muster", api_key="very-secret-key-123")
    assert "very-secret-key-123" not in repr(ledger.adapter.settings)  # type: ignore[attr-defined]
