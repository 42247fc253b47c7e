"""Domain errors. Every message names the bad value and says how to fix it.

The CLI turns any :class:`XlingualError` into a one-line message and a non-zero exit code,
so a user mistake never shows a traceback.
"""

from __future__ import annotations


class XlingualError(Exception):
    """Base class of every error xlingual raises on purpose."""


class DataError(XlingualError):
    """A parallel corpus cannot be read or fails validation (names file and line)."""


class ModelError(XlingualError):
    """A model spec cannot be resolved, converted or loaded."""


class ConfigError(XlingualError):
    """An option value is out of range or options contradict each other."""


class CacheError(XlingualError):
    """An on-disk cache entry is missing, incomplete or corrupt."""


class SearchIndexError(XlingualError):
    """A search index cannot be built, loaded or queried."""


class DiskFullError(XlingualError):
    """A write ran out of disk space; the message says which artifact is intact and how to go on."""


class ClassifierError(XlingualError):
    """A classifier cannot be fitted, loaded or applied (a damaged folder, a model outside its space)."""
