"""HTML rendering with the standard library: ``string.Template`` plus escaping by default.

Every value put into a template is HTML-escaped unless it is ``Markup`` (HTML this
package built itself), so text from the configuration, a service's error message or a
form can never become markup. Page templates are files in ``templates/``; small
repeated fragments (a table row) are rendered from strings with the same rules.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).with_name("templates")


class Markup(str):
    """Text that is already HTML; inserted as is."""

    __slots__ = ()


NOTHING = Markup("")


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(html.escape(str(value), quote=True))


def join(parts: list[Markup], separator: str = "\n") -> Markup:
    return Markup(separator.join(parts))


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / f"{name}.html").read_text("utf-8"))


def fragment(template: str, **values: object) -> Markup:
    return Markup(Template(template).substitute({k: escape(v) for k, v in values.items()}))


def render(name: str, **values: object) -> Markup:
    """Fill ``templates/<name>.html``; a missing value is a bug, so it raises KeyError."""
    return Markup(_template(name).substitute({k: escape(v) for k, v in values.items()}))
