"""The OpenAPI 3.1 description of the REST API, /healthz and /metrics, written as data.

Kept by hand next to the handlers (and checked against the router by a test) rather
than generated, so it says what clients need to know: which calls need a session and
a CSRF header, and what each error looks like.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .context import Access, policy, state
from .responses import json_ok
from .sessions import COOKIE

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Json, description: str) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Json:
    return {"$ref": "#/components/responses/Error", "description": description}


_UNAUTHORIZED = {"401": _error("Not logged in (or no admin password set yet).")}
_CSRF = {"403": _error("Missing or wrong X-CSRF-Token header, or a cross-site request.")}
_AUTH: list[Json] = [{"session": []}]
_AUTH_CSRF: list[Json] = [{"session": [], "csrf": []}]
_SECRETS = {
    "name": "secrets",
    "in": "query",
    "required": False,
    "description": "true: include secrets (passwords) in clear text; they are masked otherwise.",
    "schema": {"type": "boolean", "default": False},
}

SCHEMAS: Json = {
    "Problem": {
        "type": "object",
        "required": ["path", "reason"],
        "properties": {
            "path": {"type": "string", "description": "e.g. users[2].extension; '' = document"},
            "reason": {"type": "string"},
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "problems"],
        "properties": {
            "error": {"type": "string"},
            "problems": {"type": "array", "items": _ref("Problem")},
        },
    },
    "ServiceStatus": {
        "type": "object",
        "properties": {
            "state": {"enum": ["starting", "running", "degraded", "stopped"]},
            "restarts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
            "last_crash": {"type": ["number", "null"], "description": "Unix time"},
            "since": {"type": "number", "description": "Unix time of the last state change"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "version", "services"],
        "properties": {
            "status": {"enum": ["ok", "starting", "degraded", "stopping"]},
            "version": {"type": "string"},
            "services": {"type": "object", "additionalProperties": _ref("ServiceStatus")},
        },
    },
    "Box": {
        "type": "object",
        "properties": {
            "hostname": {"type": "string"},
            "version": {"type": "string"},
            "board": {"type": "string"},
            "started_at": {"type": "number"},
            "uptime_s": {"type": "number"},
            "config_revision": {"type": "integer"},
        },
    },
    "Status": {
        "allOf": [
            _ref("Health"),
            {"type": "object", "properties": {"box": _ref("Box")}},
        ]
    },
    "Session": {
        "type": "object",
        "properties": {
            "user": {"type": "string"},
            "csrf_token": {
                "type": "string",
                "description": "Send as X-CSRF-Token with every unsafe request.",
            },
            "idle_timeout_s": {"type": "number"},
        },
    },
    "Credentials": {
        "type": "object",
        "required": ["password"],
        "properties": {
            "username": {"type": "string", "default": "admin"},
            "password": {"type": "string"},
        },
    },
    "Document": {
        "type": "object",
        "description": (
            "The whole configuration (schema version 1): version, system, network, users, "
            "trunks, ports, phones, queues, agents, schedules. Secrets are shown as "
            "'********' unless secrets=true."
        ),
        "additionalProperties": True,
    },
    "Revision": {
        "type": "object",
        "properties": {
            "revision": {"type": "integer"},
            "applied_at": {"type": "string"},
            "source": {"type": "string"},
            "sha256": {"type": "string"},
        },
    },
}

PATHS: Json = {
    "/healthz": {
        "get": {
            "operationId": "healthz",
            "summary": "Overall health and one entry per service (no login needed).",
            "tags": ["monitoring"],
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), "Every service is running."),
                "503": _json(_ref("Health"), "Starting, degraded or stopping."),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics, text exposition format 0.0.4 (no login needed).",
            "tags": ["monitoring"],
            "security": [],
            "responses": {
                "200": {
                    "description": "Metrics.",
                    "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This description.",
            "tags": ["meta"],
            "security": [],
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
        }
    },
    "/api/v1/setup": {
        "post": {
            "operationId": "setup",
            "summary": "First boot: set the admin password. Only while none is set.",
            "tags": ["session"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["password"],
                            "properties": {"password": {"type": "string", "minLength": 10}},
                        }
                    }
                },
            },
            "responses": {
                "201": _json({"type": "object"}, "The password is set; now log in."),
                "409": _error("A password is already set."),
                "415": _error("The body is not application/json."),
                "422": _error("The password breaks the policy; every reason is listed."),
            },
        }
    },
    "/api/v1/session": {
        "get": {
            "operationId": "getSession",
            "summary": "The current session and its CSRF token.",
            "tags": ["session"],
            "security": _AUTH,
            "responses": {"200": _json(_ref("Session"), "Logged in."), **_UNAUTHORIZED},
        },
        "post": {
            "operationId": "login",
            "summary": "Log in; sets the session cookie and returns the CSRF token.",
            "tags": ["session"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Credentials")}},
            },
            "responses": {
                "200": _json(_ref("Session"), "Logged in; the cookie is set."),
                "401": _error("Wrong user name or password (or no password set yet)."),
                "415": _error("The body is not application/json."),
                "429": _error("Too many failures from this client; see Retry-After."),
            },
        },
        "delete": {
            "operationId": "logout",
            "summary": "Log out: the session is forgotten at once.",
            "tags": ["session"],
            "security": _AUTH_CSRF,
            "responses": {"204": {"description": "Logged out."}, **_UNAUTHORIZED, **_CSRF},
        },
    },
    "/api/v1/admin/password": {
        "post": {
            "operationId": "changePassword",
            "summary": "Change the admin password; every other session is logged out.",
            "tags": ["session"],
            "security": _AUTH_CSRF,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["current", "new"],
                            "properties": {
                                "current": {"type": "string"},
                                "new": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(_ref("Session"), "Changed; the session id and token are new."),
                **_UNAUTHORIZED,
                **_CSRF,
                "422": _error("The current password is wrong or the new one is refused."),
                "429": _error("Too many wrong passwords; see Retry-After."),
            },
        }
    },
    "/api/v1/status": {
        "get": {
            "operationId": "status",
            "summary": "Health (as /healthz) plus the box: host name, version, board, uptime.",
            "tags": ["monitoring"],
            "security": _AUTH,
            "responses": {"200": _json(_ref("Status"), "Status."), **_UNAUTHORIZED},
        }
    },
    "/api/v1/config": {
        "get": {
            "operationId": "getConfig",
            "summary": "The whole configuration, secrets masked unless secrets=true.",
            "tags": ["config"],
            "security": _AUTH,
            "parameters": [
                _SECRETS,
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "schema": {"enum": ["json", "yaml"], "default": "json"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The document; X-Config-Revision says its revision.",
                    "headers": {"X-Config-Revision": {"schema": {"type": "integer"}}},
                    "content": {
                        "application/json": {"schema": _ref("Document")},
                        "application/yaml": {"schema": {"type": "string"}},
                    },
                },
                "400": _error("Bad query parameter."),
                **_UNAUTHORIZED,
            },
        },
        "put": {
            "operationId": "putConfig",
            "summary": "Replace the whole configuration (all or nothing).",
            "description": (
                "Checked exactly like `skillepunkt config import`. A users[].sip_password "
                "of '********' (the mask of an export) keeps that user's current password; "
                "the mask anywhere else (trunk passwords) is refused with a problem."
            ),
            "tags": ["config"],
            "security": _AUTH_CSRF,
            "requestBody": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "text/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": _ref("Document")},
                },
            },
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"revision": {"type": "integer"}}},
                    "Imported as this revision.",
                ),
                **_UNAUTHORIZED,
                **_CSRF,
                "413": _error("The document is larger than 4 MiB."),
                "415": _error("Unsupported Content-Type."),
                "422": _error("Invalid; every problem is listed and nothing changed."),
            },
        },
    },
    "/api/v1/config/revisions": {
        "get": {
            "operationId": "configRevisions",
            "summary": "The latest configuration revisions, newest first.",
            "tags": ["config"],
            "security": _AUTH,
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
                }
            ],
            "responses": {
                "200": _json({"type": "array", "items": _ref("Revision")}, "Revisions."),
                "400": _error("Bad limit."),
                **_UNAUTHORIZED,
            },
        }
    },
    "/api/v1/config/{section}": {
        "get": {
            "operationId": "getConfigSection",
            "summary": "One section of the configuration, secrets masked unless secrets=true.",
            "tags": ["config"],
            "security": _AUTH,
            "parameters": [
                {"name": "section", "in": "path", "required": True, "schema": {"type": "string"}},
                _SECRETS,
            ],
            "responses": {
                "200": _json({}, "The section (an object or a list)."),
                **_UNAUTHORIZED,
                "404": _error("No such section; the problem lists the sections."),
            },
        }
    },
    "/api/v1/sim": {
        "get": {
            "operationId": "sim",
            "summary": "Simulated board only: its devices, buses and virtual devices.",
            "tags": ["simulator"],
            "security": _AUTH,
            "responses": {
                "200": _json({"type": "object"}, "The board's description."),
                **_UNAUTHORIZED,
                "404": _error("This box is not running the simulated board."),
            },
        }
    },
    "/api/v1/sim/faults": {
        "post": {
            "operationId": "simFault",
            "summary": "Simulated board only: make a running service crash now.",
            "tags": ["simulator"],
            "security": _AUTH_CSRF,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["service"],
                            "properties": {"service": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "202": _json({"type": "object"}, "The fault is injected; it restarts."),
                **_UNAUTHORIZED,
                **_CSRF,
                "404": _error("Not the sim board, or no such running service."),
                "422": _error("No service named."),
            },
        }
    },
    "/api/v1/sim/phones/{name}": {
        "post": {
            "operationId": "simPhone",
            "summary": "Simulated board only: work a virtual analog phone (fxsN): lift or "
            "replace the handset, flash, dial DTMF digits, or send a test tone.",
            "tags": ["simulator"],
            "security": _AUTH_CSRF,
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "action": {"enum": ["offhook", "onhook", "flash", "dial", "tone"]},
                                "digits": {"type": "string"},
                                "hz": {"type": "number", "minimum": 100, "maximum": 3800},
                                "seconds": {"type": "number", "maximum": 30},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"type": "object"}, "Done; the phone's state."),
                **_UNAUTHORIZED,
                **_CSRF,
                "404": _error("Not the sim board, or no such phone."),
                "409": _error("Not possible now (e.g. dialling on-hook)."),
                "422": _error("Unknown action or bad argument."),
            },
        }
    },
    "/api/v1/sim/lines/{name}": {
        "post": {
            "operationId": "simLine",
            "summary": "Simulated board only: work a virtual PSTN line (fxoN): ring it "
            "(with caller ID), stop ringing, answer or hang up the far end, send a test tone.",
            "tags": ["simulator"],
            "security": _AUTH_CSRF,
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "action": {"enum": ["ring", "stop", "answer", "hangup", "tone"]},
                                "cli": {"type": "string", "pattern": "^[0-9]{1,20}$"},
                                "hz": {"type": "number", "minimum": 100, "maximum": 3800},
                                "seconds": {"type": "number", "maximum": 30},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"type": "object"}, "Done; the line's state."),
                **_UNAUTHORIZED,
                **_CSRF,
                "404": _error("Not the sim board, or no such line."),
                "409": _error("Not possible in the line's state."),
                "422": _error("Unknown action or bad argument."),
            },
        }
    },
    "/api/v1/sim/devices/{name}/heard": {
        "get": {
            "operationId": "simHeard",
            "summary": "Simulated board only: the last seconds a virtual phone's earpiece "
            "or a PSTN line's exchange side heard, as base64 16-bit little-endian PCM at 8 kHz.",
            "tags": ["simulator"],
            "security": _AUTH,
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "seconds",
                    "in": "query",
                    "schema": {"type": "number", "maximum": 60, "default": 2},
                },
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "rate": {"type": "integer"},
                            "until": {"type": "number"},
                            "samples": {"type": "integer"},
                            "pcm": {"type": "string"},
                        },
                    },
                    "The audio.",
                ),
                "400": _error("Bad seconds."),
                **_UNAUTHORIZED,
                "404": _error("Not the sim board, or no such device."),
            },
        }
    },
    "/api/v1/analog": {
        "get": {
            "operationId": "analogStatus",
            "summary": "The analog gateway: each FXS/FXO port (state, number, timeslot, RTP) "
            "and what is in use (channels, calls, RTP ports, timeslots).",
            "tags": ["status"],
            "security": _AUTH,
            "responses": {
                "200": _json({"type": "object"}, "The gateway's status."),
                **_UNAUTHORIZED,
                "404": _error("No analog gateway is running."),
            },
        }
    },
}


def document(version: str) -> Json:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Skillepunkt REST API",
            "version": version,
            "description": (
                "Management API of the Skillepunkt telephony edge appliance. Log in with "
                "POST /api/v1/session; send the returned csrf_token as X-CSRF-Token on "
                "every PUT, POST and DELETE. Errors are always "
                '{"error": "...", "problems": [{"path": "...", "reason": "..."}]}. '
                "On the box itself the same API is also served on the unix socket "
                "<data directory>/api.sock (mode 0600), where requests need no session and "
                "no token: that is how the skillepunkt CLI talks to the running daemon."
            ),
        },
        "servers": [{"url": "/"}],
        "security": _AUTH,
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": _json(_ref("Error"), "An error.")},
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": f"Over HTTPS the cookie is named __Host-{COOKIE}.",
                },
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    }


@policy(Access.PUBLIC)
async def openapi(request: web.Request) -> web.Response:
    """Public: it tells nothing about this box, and tools need it before logging in."""
    return json_ok(document(state(request).app.version))
