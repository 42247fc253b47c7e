"""One dataclass per stage. Every default is defined here, once; the CLI reads these.

The settings are grouped by stage (:mod:`.training`, :mod:`.search`, :mod:`.export`, :mod:`.transfer`) and
all importable from here: ``from xlingual.config import DistillConfig``.
"""

from xlingual.config.export import EmbedConfig, ExportConfig, TrimConfig
from xlingual.config.search import IndexConfig, SearchConfig, ServeConfig
from xlingual.config.static import StaticConfig
from xlingual.config.training import (
    DEFAULT_STUDENT,
    DEFAULT_TEACHER,
    RESUME_COMPARED,
    CacheConfig,
    DataConfig,
    DistillConfig,
    EvalConfig,
    MineConfig,
    xlingual_home,
)
from xlingual.config.transfer import ClassifyConfig

__all__ = [
    "DEFAULT_STUDENT",
    "DEFAULT_TEACHER",
    "RESUME_COMPARED",
    "CacheConfig",
    "ClassifyConfig",
    "DataConfig",
    "DistillConfig",
    "EmbedConfig",
    "EvalConfig",
    "ExportConfig",
    "IndexConfig",
    "MineConfig",
    "SearchConfig",
    "ServeConfig",
    "StaticConfig",
    "TrimConfig",
    "xlingual_home",
]
