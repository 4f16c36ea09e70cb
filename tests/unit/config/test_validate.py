"""Validation reports every problem at once, with its path, and accepts good documents."""

from __future__ import annotations

import pytest

from firmware.config import ConfigError, Problem, load_yaml, validate

GOOD = """
version: 1
system: {hostname: reception, country: DK, timezone: Europe/Copenhagen, language: da}
network:
  lan: {address: 192.168.1.2/24, gateway: 192.168.1.1, dns: [192.168.1.1]}
  voice_vlan: 20
users:
  - {extension: "101", name: Anne Hansen}
  - {extension: "102", name: Bo Nielsen, sip_password: "s3cret-s3cret", email: bo@example.dk}
trunks:
  - {name: tdc, host: sip.example.dk, transport: tls, username: "4512345678", password: "hunter2hunter2", srtp: mandatory}
ports:
  - {name: fxs1, extension: "201"}
  - {name: fxo1, destination: "600"}
phones:
  - {mac: "80:5E:C0:12:34:56", vendor: yealink, model: T54W, extension: "101"}
queues:
  - {name: support, extension: "600", schedule: office, overflow: {after_s: 120, destination: "102"}}
agents:
  - {extension: "101", queues: [{queue: support, skill: 7}]}
schedules:
  - name: office
    hours: [{days: [mon, tue, wed, thu, fri], start: "08:00", end: "16:00"}]
    holidays: [{date: 2026-12-24, name: Juleaften}]
"""


def problems(raw: object) -> set[Problem]:
    with pytest.raises(ConfigError) as info:
        validate(raw)
    return set(info.value.problems)


def paths(raw: object) -> set[str]:
    return {p.path for p in problems(raw)}


def test_good_document_validates_with_defaults() -> None:
    doc = validate(load_yaml(GOOD))
    assert doc.system.country == "DK"
    assert doc.phones[0].mac == "805ec0123456"
    assert doc.users[0].sip_password is None
    assert "s3cret" not in repr(doc)  # secrets never show in repr (and so never in logs)
    empty = validate({})
    assert empty.system.timezone == "Europe/Copenhagen"
    assert empty.system.language == "da"


def test_every_problem_is_reported_at_once() -> None:
    raw = load_yaml(GOOD)
    raw["system"]["hostname"] = "bad host"  # wrong format
    raw["system"]["colour"] = "red"  # unknown key
    raw["users"].append({"extension": "101", "name": "Dup"})  # duplicate extension
    raw["users"].append({"extension": 103, "name": "Int"})  # wrong type
    raw["network"]["voice_vlan"] = 5000  # out of bounds
    raw["phones"][0]["extension"] = "999"  # unknown user
    raw["bogus"] = 1  # unknown section
    found = problems(raw)
    assert {p.path for p in found} == {
        "system.hostname",
        "system.colour",
        "users[2].extension",
        "users[3].extension",
        "network.voice_vlan",
        "phones[0].extension",
        "bogus",
    }
    reasons = {p.path: p.reason for p in found}
    assert reasons["system.colour"] == "unknown key"
    assert "duplicate extension '101'" in reasons["users[2].extension"]
    assert "no user has extension '999'" in reasons["phones[0].extension"]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"users": [{"extension": "1a", "name": "x"}]}, "users[0].extension"),
        ({"users": [{"name": "x"}]}, "users[0].extension"),
        (
            {"users": [{"extension": "101", "name": "x", "sip_password": "short"}]},
            "users[0].sip_password",
        ),
        ({"users": "everyone"}, "users"),
        ({"system": {"country": "XX"}}, "system.country"),
        ({"system": {"timezone": "Mars/Olympus"}}, "system.timezone"),
        ({"network": {"lan": {"address": "10.0.0.1"}}}, "network.lan.address"),
        ({"version": 99}, "version"),
        ({"phones": [{"mac": "zz", "vendor": "yealink", "extension": "101"}]}, "phones[0].mac"),
        ({"trunks": [{"name": "t", "host": "h", "port": 70000}]}, "trunks[0].port"),
        ({"queues": [{"name": "q", "extension": "600", "schedule": "nope"}]}, "queues[0].schedule"),
        ({"ports": [{"name": "fxo1", "extension": "201"}]}, "ports[0].extension"),
        ({"ports": [{"name": "fxs1", "destination": "201"}]}, "ports[0].destination"),
        ({"ports": [{"name": "eth0"}]}, "ports[0].name"),
        (
            {
                "schedules": [
                    {"name": "s", "hours": [{"days": ["mon"], "start": "17:00", "end": "08:00"}]}
                ]
            },
            "schedules[0].hours[0]",
        ),
        (
            {
                "users": [{"extension": "101", "name": "a"}],
                "queues": [{"name": "q", "extension": "101"}],
            },
            "queues[0].extension",
        ),
        (
            {
                "users": [{"extension": "101", "name": "a"}],
                "queues": [{"name": "q", "extension": "600"}],
                "agents": [{"extension": "101", "queues": [{"queue": "q"}, {"queue": "q"}]}],
            },
            "agents[0].queues[1].queue",
        ),
        (
            {
                "users": [{"extension": "101", "name": "a"}],
                "agents": [{"extension": "101", "queues": [{"queue": "nope", "skill": 10}]}],
            },
            "agents[0].queues[0].skill",
        ),
    ],
)
def test_single_problem_has_precise_path(raw: object, path: str) -> None:
    assert path in paths(raw)


def test_duplicate_macs_compare_normalised() -> None:
    raw = {
        "users": [{"extension": "101", "name": "a"}],
        "phones": [
            {"mac": "00:11:22:33:44:55", "vendor": "snom", "extension": "101"},
            {"mac": "001122334455", "vendor": "snom", "extension": "101"},
        ],
    }
    assert paths(raw) == {"phones[1].mac"}


def test_not_a_mapping() -> None:
    assert paths([1, 2]) == {""}


def test_malformed_yaml_says_where() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("users:\n  - {extension: '101', name: [unclosed\n")
    (problem,) = info.value.problems
    assert "malformed YAML" in problem.reason and "line" in problem.reason


def test_duplicate_yaml_keys_are_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml("users: []\nsystem: {}\nusers: []\n")
    assert "duplicate key 'users'" in info.value.problems[0].reason


def test_invalid_utf8() -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(b"system: {hostname: \xff}\n")
    assert "UTF-8" in info.value.problems[0].reason
