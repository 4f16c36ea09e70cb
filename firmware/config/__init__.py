"""The configuration model, its SQLite store, validation and YAML import/export.

Everyone reads configuration through ``ConfigStore``; only this package writes it.
"""

from .admin import AdminAccount
from .errors import ConfigError, Problem
from .schema import SCHEMA_VERSION, SECTIONS, Document
from .store import ConfigStore
from .validate import validate
from .watch import ConfigChanged, ConfigWatcher
from .yamlio import dump_yaml, load_yaml

__all__ = [
    "SCHEMA_VERSION",
    "SECTIONS",
    "AdminAccount",
    "ConfigChanged",
    "ConfigError",
    "ConfigStore",
    "ConfigWatcher",
    "Document",
    "Problem",
    "dump_yaml",
    "load_yaml",
    "validate",
]
