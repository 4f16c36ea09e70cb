"""Validation of a configuration document: structure by the schema, then cross-references.

Both passes always run, on the raw data, so one call reports every problem at once:
a type error in one user does not hide a duplicate extension in two others.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError, Problem
from .schema import Document


def validate(raw: Any) -> Document:
    """Return the validated document or raise ConfigError listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem("", f"expected a mapping of sections, got {_kind(raw)}")])
    problems: list[Problem] = []
    document: Document | None = None
    try:
        document = Document.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc))
    problems.extend(_cross_references(raw))
    if problems or document is None:
        raise ConfigError(problems)
    return document


def _kind(value: Any) -> str:
    return {
        list: "a list",
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
    }.get(type(value), type(value).__name__)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _from_pydantic(exc: ValidationError) -> Iterator[Problem]:
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        reason = err["msg"]
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        elif err["type"] == "missing":
            reason = "required key is missing"
        elif reason.startswith("Value error, "):
            reason = reason.removeprefix("Value error, ")
        yield Problem(_path(loc), reason)


def _items(raw: dict[str, Any], section: str) -> Iterator[tuple[int, dict[str, Any]]]:
    value = raw.get(section)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _norm_mac(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    digits = re.sub(r"[:.-]", "", value).lower()
    return digits if re.fullmatch(r"[0-9a-f]{12}", digits) else None


def _duplicates(
    raw: dict[str, Any], section: str, key: str, norm: Any = _text
) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, item in _items(raw, section):
        value = norm(item.get(key))
        if value is None:
            continue
        if value in first:
            yield Problem(
                f"{section}[{i}].{key}",
                f"duplicate {key} {value!r} (also {section}[{first[value]}])",
            )
        else:
            first[value] = i


def _cross_references(raw: dict[str, Any]) -> Iterator[Problem]:
    for section, key in (
        ("users", "extension"),
        ("trunks", "name"),
        ("ports", "name"),
        ("queues", "name"),
        ("agents", "extension"),
        ("schedules", "name"),
    ):
        yield from _duplicates(raw, section, key)
    yield from _duplicates(raw, "phones", "mac", _norm_mac)

    # One numbering plan: a number belongs to one user, one queue or one port.
    owners: dict[str, list[str]] = defaultdict(list)
    for section in ("users", "queues", "ports"):
        for i, item in _items(raw, section):
            number = _text(item.get("extension"))
            if number is not None:
                owners[number].append(f"{section}[{i}]")
    sip = raw.get("sip")
    rooms = sip.get("conference_rooms") if isinstance(sip, dict) else None
    for i, room in enumerate(rooms if isinstance(rooms, list) else []):
        number = _text(room)
        if number is not None:
            owners[number].append(f"sip.conference_rooms[{i}]")
    for number, places in owners.items():
        kinds = {p.split("[")[0] for p in places}
        if len(kinds) > 1:
            for place in places[1:]:
                path = place if place.startswith("sip.") else f"{place}.extension"
                yield Problem(path, f"number {number!r} is already used by {places[0]}")
    users = {_text(u.get("extension")) for _, u in _items(raw, "users")}
    queues = {_text(q.get("name")) for _, q in _items(raw, "queues")}
    schedules = {_text(s.get("name")) for _, s in _items(raw, "schedules")}
    numbers = set(owners)

    for i, user in _items(raw, "users"):
        forward, own = user.get("forward"), _text(user.get("extension"))
        if not isinstance(forward, dict):
            continue
        for kind in ("unconditional", "busy", "no_answer"):
            target = _text(forward.get(kind))
            if target is None:
                continue
            if target == own:
                yield Problem(f"users[{i}].forward.{kind}", "a user cannot forward to itself")
            elif target not in users:
                yield Problem(f"users[{i}].forward.{kind}", f"no user has extension {target!r}")
    for i, phone in _items(raw, "phones"):
        ext = _text(phone.get("extension"))
        if ext is not None and ext not in users:
            yield Problem(f"phones[{i}].extension", f"no user has extension {ext!r}")
    for i, agent in _items(raw, "agents"):
        ext = _text(agent.get("extension"))
        if ext is not None and ext not in users:
            yield Problem(f"agents[{i}].extension", f"no user has extension {ext!r}")
        memberships = agent.get("queues")
        if isinstance(memberships, list):
            seen: set[str] = set()
            for j, m in enumerate(memberships):
                name = _text(m.get("queue")) if isinstance(m, dict) else None
                if name is None:
                    continue
                if name not in queues:
                    yield Problem(f"agents[{i}].queues[{j}].queue", f"no queue named {name!r}")
                if name in seen:
                    yield Problem(f"agents[{i}].queues[{j}].queue", f"queue {name!r} listed twice")
                seen.add(name)
    for i, queue in _items(raw, "queues"):
        sched = _text(queue.get("schedule"))
        if sched is not None and sched not in schedules:
            yield Problem(f"queues[{i}].schedule", f"no schedule named {sched!r}")
        overflow = queue.get("overflow")
        if isinstance(overflow, dict):
            dest = _text(overflow.get("destination"))
            if dest is not None and dest not in numbers:
                yield Problem(
                    f"queues[{i}].overflow.destination",
                    f"no user, queue or port has number {dest!r}",
                )
    for i, port in _items(raw, "ports"):
        name = _text(port.get("name")) or ""
        kind = re.sub(r"[0-9]+$", "", name)
        if port.get("extension") is not None and kind not in ("fxs", "dect"):
            yield Problem(
                f"ports[{i}].extension",
                f"only fxs and dect ports have an extension, not {kind or 'this port'}",
            )
        dest = _text(port.get("destination"))
        if dest is not None:
            if kind not in ("fxo", "bri", "pri"):
                yield Problem(
                    f"ports[{i}].destination", "only fxo, bri and pri lines have a destination"
                )
            elif dest not in numbers:
                yield Problem(
                    f"ports[{i}].destination", f"no user, queue or port has number {dest!r}"
                )
    for i, schedule in _items(raw, "schedules"):
        hours = schedule.get("hours")
        if isinstance(hours, list):
            for j, h in enumerate(hours):
                if (
                    isinstance(h, dict)
                    and isinstance(h.get("start"), str)
                    and isinstance(h.get("end"), str)
                ) and h["start"] >= h["end"]:
                    yield Problem(
                        f"schedules[{i}].hours[{j}]",
                        f"start {h['start']} is not before end {h['end']}",
                    )
