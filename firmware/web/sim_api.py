"""REST endpoints that drive the sim board's virtual analog devices, and the gateway's status.

``POST /api/v1/sim/phones/{name}`` works a virtual phone (hook, keypad, a test tone
into its mouthpiece), ``POST /api/v1/sim/lines/{name}`` a virtual PSTN line (ring with
caller ID, answer, hang up, a test tone), ``GET /api/v1/sim/devices/{name}/heard``
returns what a device's earpiece heard (base64 16-bit PCM), and ``GET /api/v1/analog``
the analog gateway's ports, calls and in-use counters (asked over the event bus).
``skillepunkt sim phone|line`` and the end-to-end tests use these.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from aiohttp import web

from ..config import Problem
from ..core.analog_bus import AnalogStatusQuery
from .context import state
from .importing import BodyTooLarge, read_bounded
from .responses import json_error, json_ok

PREFIX = "/api/v1"
MAX_BODY = 4096
MAX_TONE_S = 30.0
MAX_HEARD_S = 60.0


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        data = await read_bounded(request, MAX_BODY)
    except BodyTooLarge as exc:
        return json_error(413, str(exc))
    try:
        body = json.loads(data) if data else None
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "the body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        return json_error(
            422, "expected a JSON object with an action", [Problem("action", "required")]
        )
    return body


def _device(
    request: web.Request, kind: type | tuple[type, ...], what: str
) -> object | web.Response:
    app = state(request).app
    if app.board.name != "sim":
        return json_error(404, "the simulator API exists only on the sim board")
    name = request.match_info["name"]
    device = getattr(app.board, "virtual", {}).get(name)
    if not isinstance(device, kind):
        return json_error(404, f"no virtual {what} named {name!r}")
    return device


def _tone(body: dict[str, Any]) -> np.ndarray | Problem:
    hz, seconds = body.get("hz", 1000), body.get("seconds", 2.0)
    if not isinstance(hz, int | float) or not 100 <= hz <= 3800:
        return Problem("hz", "a frequency from 100 to 3800 Hz")
    if not isinstance(seconds, int | float) or not 0 < seconds <= MAX_TONE_S:
        return Problem("seconds", f"a duration above 0 and up to {MAX_TONE_S} s")
    t = np.arange(round(seconds * 8000)) / 8000
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _done(device: Any, action: str) -> web.Response:
    return json_ok({"action": action, "device": device.describe()})


async def sim_phone(request: web.Request) -> web.Response:
    from board.sim.devices import AnalogPhone
    from board.sim.devices.analog_phone import PhoneError

    phone = _device(request, AnalogPhone, "phone")
    if isinstance(phone, web.Response):
        return phone
    assert isinstance(phone, AnalogPhone)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    action = body["action"]
    try:
        if action == "offhook":
            phone.off_hook()
        elif action == "onhook":
            phone.on_hook()
        elif action == "flash":
            phone.flash()
        elif action == "dial":
            digits = body.get("digits")
            if not isinstance(digits, str):
                return json_error(422, "dial needs digits", [Problem("digits", "required")])
            phone.dial(digits)
        elif action == "tone":
            tone = _tone(body)
            if isinstance(tone, Problem):
                return json_error(422, "bad tone", [tone])
            phone.say(tone)
        else:
            return json_error(
                422, f"unknown action {action!r}",
                [Problem("action", "offhook, onhook, flash, dial or tone")],
            )  # fmt: skip
    except PhoneError as exc:
        return json_error(409, str(exc))
    return _done(phone, action)


async def sim_line(request: web.Request) -> web.Response:
    from board.sim.devices import PstnLine
    from board.sim.devices.pstn_line import LineError

    line = _device(request, PstnLine, "line")
    if isinstance(line, web.Response):
        return line
    assert isinstance(line, PstnLine)
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    action = body["action"]
    try:
        if action == "ring":
            cli = body.get("cli")
            if cli is not None and not isinstance(cli, str):
                return json_error(422, "cli must be text", [Problem("cli", "digits")])
            line.ring(cli)
        elif action == "stop":
            line.stop_ringing()
        elif action == "answer":
            line.answer()
        elif action == "hangup":
            line.hang_up()
        elif action == "tone":
            tone = _tone(body)
            if isinstance(tone, Problem):
                return json_error(422, "bad tone", [tone])
            line.play(tone)
        else:
            return json_error(
                422, f"unknown action {action!r}",
                [Problem("action", "ring, stop, answer, hangup or tone")],
            )  # fmt: skip
    except LineError as exc:
        return json_error(409, str(exc))
    return _done(line, action)


async def sim_heard(request: web.Request) -> web.Response:
    from board.sim.devices import AnalogPhone, PstnLine

    device = _device(request, (AnalogPhone, PstnLine), "phone or line")
    if isinstance(device, web.Response):
        return device
    assert isinstance(device, (AnalogPhone, PstnLine))
    try:
        seconds = float(request.query.get("seconds", "2"))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_HEARD_S:
        return json_error(400, f"seconds must be above 0 and up to {MAX_HEARD_S}")
    now = device.line.clock()
    samples = device.heard(since=now - seconds)
    data = samples.astype("<i2").tobytes()
    return json_ok(
        {
            "rate": 8000,
            "until": now,
            "samples": len(samples),
            "pcm": base64.b64encode(data).decode(),
        }
    )


async def analog_status(request: web.Request) -> web.Response:
    query = AnalogStatusQuery()
    state(request).app.bus.publish(query)
    if query.result is None:
        return json_error(404, "no analog gateway is running")
    return json_ok(query.result)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(f"{PREFIX}/sim/phones/{{name}}", sim_phone)
    router.add_post(f"{PREFIX}/sim/lines/{{name}}", sim_line)
    router.add_get(f"{PREFIX}/sim/devices/{{name}}/heard", sim_heard)
    router.add_get(f"{PREFIX}/analog", analog_status)
