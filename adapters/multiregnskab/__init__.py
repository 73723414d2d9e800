"""Multi-Regnskab adapters: `multiregnskab` (Public Client API) and `multiregnskab-s2s` (System-to-System API)."""

from .public_client import MultiRegnskabAdapter, MultiRegnskabSettings
from .s2s_contract import S2SContract
from .system_to_system import MultiRegnskabS2SAdapter, MultiRegnskabS2SSettings

__all__ = [
    "MultiRegnskabAdapter",
    "MultiRegnskabS2SAdapter",
    "MultiRegnskabS2SSettings",
    "MultiRegnskabSettings",
    "S2SContract",
]
