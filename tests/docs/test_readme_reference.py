"""The README lists every common setting and every public name (issue 15 item 10), so a new one cannot go
undocumented."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

import accounting_bridge as ab
from accounting_bridge.settings import CommonSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def common_settings_table() -> str:
    start = README.index("| setting | default | meaning |", README.index("Common settings, accepted by every adapter"))
    return README[start : README.index("\n\n", start)]


def test_every_common_setting_is_in_the_table() -> None:
    table = common_settings_table()
    listed = set(re.findall(r"^\s*\| `(\w+)` \|", table, flags=re.MULTILINE))
    assert listed == {f.name for f in attrs.fields(CommonSettings)}
    assert "`write_settle_delay`" in table


def test_every_public_name_is_listed() -> None:
    section = README[README.index("## Public names") : README.index("## Examples in this README")]
    missing = [name for name in ab.__all__ if f"`ab.{name}" not in section]
    assert missing == []
    assert "`ab.MemoryTokenStore`" in section


def test_the_sandbox_and_testing_helpers_are_listed() -> None:
    from accounting_bridge import sandbox, testing

    section = README[README.index("## Public names") : README.index("## Examples in this README")]
    missing = [name for module in (sandbox, testing) for name in module.__all__ if f"`{name}" not in section]
    assert missing == []
