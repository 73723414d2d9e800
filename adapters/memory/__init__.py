"""The in-process `memory` adapter: every capability, no I/O."""

from .adapter import MemoryAdapter, MemorySettings, MemoryStore

__all__ = ["MemoryAdapter", "MemorySettings", "MemoryStore"]
