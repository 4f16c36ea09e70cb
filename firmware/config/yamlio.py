"""YAML in and out of the configuration document.

PyYAML silently keeps the last of duplicated keys; a technician who writes ``users:``
twice would lose half the users without a word, so duplicates are an error here.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError, Problem

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str | bytes) -> Any:
    """Parse one YAML document strictly; raise ConfigError with line and column on failure."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise ConfigError([Problem("", f"document larger than {MAX_DOCUMENT_BYTES} bytes")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem("", f"not UTF-8 text (byte {exc.start})")]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([Problem("", f"malformed YAML: {where}{exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem("", f"malformed YAML: {exc}")]) from None


def dump_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
