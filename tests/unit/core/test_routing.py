"""The router's plans: plain calls, DND, unconditional chains and loops, busy and
no-answer forwarding, feature codes by the owner and refused for everyone else."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from firmware.core.dialplan import Feature, FeatureMatch
from firmware.core.features import FeatureState, FeatureStore
from firmware.core.routing import (
    BUSY,
    MAX_FORWARD_HOPS,
    NO_ANSWER,
    AuthenticatedCaller,
    ExtensionRouter,
)
from firmware.sip.b2bua import NEXT_STEP_ON, Caller, LocalAnswer, RouteStep, Target
from firmware.sip.digest import DigestAuthenticator, parse_credentials, response_digest
from firmware.sip.location import Binding, LocationService
from firmware.sip.message import Request, parse_message
from firmware.sip.peer import Peer
from firmware.sip.registrar import AuthGuard, UserDirectory

NOW = 1_000_000.0
EXTENSIONS = [str(n) for n in range(201, 211)]
PASSWORD = "pass-word-123"


def user(ext: str, **extra: Any) -> dict[str, Any]:
    return {"extension": ext, "name": f"User {ext}", "sip_password": PASSWORD, **extra}


class Box:
    """A router over an in-memory location service and a feature store."""

    def __init__(self, features: FeatureStore | None = None, **per_user: dict[str, Any]) -> None:
        self.users = [user(e, **per_user.get(f"u{e}", {})) for e in EXTENSIONS]
        self.location = LocationService(None, clock=lambda: NOW)
        directory = UserDirectory(lambda: self.users)
        self.auth = DigestAuthenticator("box", clock=lambda: NOW, algorithms=("MD5",))
        self.router = ExtensionRouter(
            directory, self.location, self.auth, AuthGuard(clock=lambda: NOW), features
        )
        self.router.set_users(self.users)
        self.features = self.router.features
        self.ports = iter(range(40000, 41000))

    def register(self, ext: str, phones: int = 1) -> tuple[Target, ...]:
        bindings = []
        for _ in range(phones):
            port = next(self.ports)
            contact = f"sip:{ext}@10.0.0.9:{port}"
            bindings.append(
                Binding(
                    aor=ext, contact=contact, expires_at=NOW + 600, registered_at=NOW,
                    call_id=f"c{port}", cseq=1, peer=Peer("udp", "127.0.0.1", port),
                )
            )  # fmt: skip
        self.location.update(ext, add=bindings)
        return self.targets(ext)

    def targets(self, ext: str) -> tuple[Target, ...]:
        return tuple(Target(b.uri, b.peer, ext) for b in self.location.contacts(ext))  # type: ignore[arg-type]

    def set(self, ext: str, **state: Any) -> None:
        self.features.set(ext, FeatureState(**state))

    def route(self, dialled: str, caller: str = "209") -> list[RouteStep] | LocalAnswer | int:
        return self.router.route(AuthenticatedCaller(caller), dialled)


@pytest.fixture
def box() -> Box:
    return Box()


# -- plain calls ------------------------------------------------------------------------------


def test_an_extension_rings_all_its_phones_together(box: Box) -> None:
    phones = box.register("201", phones=2)
    assert len(phones) == 2
    assert box.route("201") == [RouteStep(phones, None, NEXT_STEP_ON)]


def test_unknown_incomplete_and_unregistered_numbers(box: Box) -> None:
    assert box.route("999") == 404
    assert box.route("20") == 484  # the start of 201..210
    assert box.route("") == 484
    assert box.route("202") == 480  # known, no phone registered
    assert box.route("sip") == 404


# -- DND --------------------------------------------------------------------------------------


def test_dnd_is_busy(box: Box) -> None:
    box.register("201")
    box.set("201", dnd=True)
    assert box.route("201") == 486


def test_dnd_goes_to_the_busy_forward_when_one_is_set(box: Box) -> None:
    box.register("201")
    colleague = box.register("202")
    box.set("201", dnd=True, forward_busy="202", forward_no_answer="203")
    assert box.route("201") == [RouteStep(colleague)]
    box.set("202", dnd=True)  # the busy target is on DND as well: busy
    assert box.route("201") == 486
    box.set("201", dnd=True, forward_busy="204")  # nobody registered at the target
    assert box.route("201") == 486


# -- unconditional forwarding ---------------------------------------------------------------


def test_unconditional_forward_rings_the_target_instead(box: Box) -> None:
    box.register("201")
    target = box.register("202", phones=2)
    box.set("201", forward_unconditional="202")
    assert box.route("201") == [RouteStep(target)]
    assert {t.callee for t in target} == {"202"}


def test_unconditional_chains_are_followed_and_the_last_one_applies_its_features(
    box: Box,
) -> None:
    box.set("201", forward_unconditional="202")
    box.set("202", forward_unconditional="203")
    box.set("203", forward_no_answer="204", no_answer_s=15)
    end = box.register("203")
    after = box.register("204")
    assert box.route("201") == [RouteStep(end, 15.0, NO_ANSWER), RouteStep(after)]
    box.set("203", forward_unconditional="204", dnd=True)  # 203 -> 204 now
    assert box.route("201") == [RouteStep(after)]


def test_a_forwarding_loop_rings_the_extension_that_closes_it(box: Box) -> None:
    box.register("201")
    closer = box.register("203")
    box.set("201", forward_unconditional="202")
    box.set("202", forward_unconditional="203")
    box.set("203", forward_unconditional="201")
    assert box.route("201") == [RouteStep(closer)]
    box.set("202", forward_unconditional="202")  # a forward to itself (set by hand)
    assert box.route("202") == 480  # not registered; no endless loop


def test_the_hop_limit_stops_long_chains(box: Box) -> None:
    chain = EXTENSIONS[:8]  # 201 -> 202 -> ... -> 208
    for a, b in itertools.pairwise(chain):
        box.set(a, forward_unconditional=b)
    stop = chain[MAX_FORWARD_HOPS]  # 5 forwards from 201: 206
    phones = box.register(stop)
    box.register(chain[-1])
    assert box.route("201") == [RouteStep(phones)]
    assert box.route("203") == [RouteStep(box.targets("208"))]  # 5 forwards from 203


def test_a_forward_never_sends_the_call_back_to_its_caller(box: Box) -> None:
    boss = box.register("201")
    box.register("202")
    box.set("201", forward_unconditional="202")
    assert box.route("201", caller="202") == [RouteStep(boss)]  # the secretary gets through
    assert box.route("201", caller="203") == [RouteStep(box.targets("202"))]


def test_a_forward_to_a_removed_extension_is_ignored(box: Box) -> None:
    own = box.register("201")
    box.set("201", forward_unconditional="202", forward_busy="203")
    box.users = [u for u in box.users if u["extension"] not in ("202", "203")]
    box.router.set_users(box.users)  # 201's own change survives (its config is unchanged)
    assert box.features.state("201").forward_unconditional == "202"
    assert box.route("201") == [RouteStep(own)]


# -- busy and no answer ---------------------------------------------------------------------


def test_busy_forward_is_the_next_step_after_a_busy_answer(box: Box) -> None:
    own = box.register("201")
    target = box.register("202")
    box.set("201", forward_busy="202")
    assert box.route("201") == [RouteStep(own, None, BUSY), RouteStep(target)]
    assert 486 in BUSY and 600 in BUSY and 603 in BUSY and 408 not in BUSY


def test_no_answer_forward_rings_n_seconds_then_the_target(box: Box) -> None:
    own = box.register("201", phones=2)
    target = box.register("202")
    box.set("201", forward_no_answer="202", no_answer_s=35)
    assert box.route("201") == [RouteStep(own, 35.0, NO_ANSWER), RouteStep(target)]
    assert 408 in NO_ANSWER and 480 in NO_ANSWER and 486 not in NO_ANSWER


def test_no_phone_registered_counts_as_no_answer(box: Box) -> None:
    target = box.register("202")
    box.set("201", forward_no_answer="202", forward_busy="203")
    assert box.route("201") == [RouteStep(target)]
    box.set("201", forward_busy="202")
    assert box.route("201") == 480


def test_busy_and_no_answer_together(box: Box) -> None:
    own = box.register("201")
    colleague = box.register("202")
    reception = box.register("203")
    box.set("201", forward_no_answer="202", forward_busy="202", no_answer_s=10)
    assert box.route("201") == [RouteStep(own, 10.0, NO_ANSWER | BUSY), RouteStep(colleague)]
    # different targets: the plan branches on the status of ringing 201
    box.set("201", forward_no_answer="202", forward_busy="203", no_answer_s=10)
    assert box.route("201") == [
        RouteStep(own, 10.0, NO_ANSWER | BUSY),
        RouteStep(reception, when=BUSY, next_on=frozenset()),
        RouteStep(colleague, when=NO_ANSWER),
    ]


def test_a_forward_target_follows_its_own_unconditional_and_dnd(box: Box) -> None:
    own = box.register("201")
    box.register("202")
    final = box.register("203")
    box.set("201", forward_no_answer="202")
    box.set("202", forward_unconditional="203", forward_busy="204")
    assert box.route("201") == [RouteStep(own, 20.0, NO_ANSWER), RouteStep(final)]
    box.set("203", dnd=True)  # the step is left out: the plan is the own phones
    assert box.route("201") == [RouteStep(own)]
    box.set("203", forward_unconditional="201")  # back into the chain: 203 closes the loop
    assert box.route("201") == [RouteStep(own, 20.0, NO_ANSWER), RouteStep(final)]


def test_no_forward_step_to_the_caller(box: Box) -> None:
    own = box.register("201")
    box.register("209")
    box.set("201", forward_no_answer="209")
    assert box.route("201", caller="209") == [RouteStep(own)]


def test_config_defaults_route_without_any_code() -> None:
    box = Box(u201={"forward": {"busy": "202"}}, u203={"dnd": True})
    own, target = box.register("201"), box.register("202")
    box.register("203")
    assert box.route("201") == [RouteStep(own, None, BUSY), RouteStep(target)]
    assert box.route("203") == 486


# -- feature codes -----------------------------------------------------------------------------


def test_the_owner_sets_and_cancels_forwarding_by_code(box: Box) -> None:
    box.register("201")
    target = box.register("202")
    answer = box.route("*21*202#", caller="201")
    assert answer == LocalAnswer(ok=True, text="all calls forwarded to 202")
    assert box.route("201", caller="203") == [RouteStep(target)]
    assert box.route("%2321%23", caller="201") == LocalAnswer(True, "unconditional forwarding off")
    assert box.route("201", caller="203") == [RouteStep(box.targets("201"))]


@pytest.mark.parametrize(
    ("dialled", "state"),
    [
        ("*21*202#", FeatureState(forward_unconditional="202")),
        ("*67*202#", FeatureState(forward_busy="202")),
        ("*61*202#", FeatureState(forward_no_answer="202")),
        ("*61*202*45#", FeatureState(forward_no_answer="202", no_answer_s=45)),
        ("*61*202*45", FeatureState(forward_no_answer="202", no_answer_s=45)),
        ("*26#", FeatureState(dnd=True)),
        ("*78", FeatureState(dnd=True)),
    ],
)
def test_every_setting_code_changes_the_callers_state(
    box: Box, dialled: str, state: FeatureState
) -> None:
    answer = box.route(dialled, caller="201")
    assert isinstance(answer, LocalAnswer) and answer.ok, answer
    assert box.features.state("201") == state
    assert box.features.state("202") == FeatureState()


@pytest.mark.parametrize("dialled", ["#21#", "#67#", "#61#", "#26#", "*79"])
def test_every_cancelling_code_clears_its_feature(box: Box, dialled: str) -> None:
    box.set("201", forward_unconditional="202", forward_busy="203", forward_no_answer="204",
            no_answer_s=30, dnd=True)  # fmt: skip
    before = box.features.state("201")
    answer = box.route(dialled, caller="201")
    assert isinstance(answer, LocalAnswer) and answer.ok
    after = box.features.state("201")
    changed = {k for k in FeatureState.__slots__ if getattr(before, k) != getattr(after, k)}
    assert len(changed) == 1, changed


def test_bad_codes_get_an_error_answer_and_change_nothing(box: Box) -> None:
    for dialled in ("*21*999#", "*21*201#", "*61*202*3#", "*61*202*200#"):
        answer = box.route(dialled, caller="201")
        assert isinstance(answer, LocalAnswer) and not answer.ok, dialled
    assert box.features.state("201") == FeatureState()
    assert box.route("*22#", caller="201") == 404
    assert box.route("*21*", caller="201") == 484


def test_only_an_authenticated_extension_may_use_feature_codes(box: Box) -> None:
    # a trunk caller (trusted by address, not by digest) whose From says 201
    assert box.router.route(Caller("201"), "*21*202#") == 403
    assert box.router.route(Caller("201"), "#26#") == 403
    # an authenticated caller that is not (any more) an extension of the configuration
    assert box.route("*26#", caller="299") == 403
    assert box.features.state("201") == FeatureState()
    # ordinary calls from a trunk are routed as before
    phones = box.register("201")
    assert box.router.route(Caller("+4512345678"), "201") == [RouteStep(phones)]


def test_codes_survive_a_restart_of_the_router(tmp_path: Path) -> None:
    with FeatureStore.open(tmp_path) as store:
        box = Box(store)
        assert box.route("*67*203#", caller="201") == LocalAnswer(
            True, "calls forwarded to 203 when busy"
        )
    with FeatureStore.open(tmp_path) as store:
        box = Box(store)
        own, target = box.register("201"), box.register("203")
        assert box.route("201") == [RouteStep(own, None, BUSY), RouteStep(target)]


# -- authentication ---------------------------------------------------------------------------


def invite(box: Box, authorization: str | None = None) -> Request:
    headers = (
        "INVITE sip:202@box SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
        'From: "Anne" <sip:201@box>;tag=a1\r\nTo: <sip:202@box>\r\n'
        "Call-ID: call-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        "Contact: <sip:201@127.0.0.1:5070>\r\n"
    )
    if authorization:
        headers += f"Proxy-Authorization: {authorization}\r\n"
    message = parse_message((headers + "Content-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_digest_callers_are_authenticated_extensions_trunks_are_not(box: Box) -> None:
    peer = Peer("udp", "127.0.0.1", 5070)
    challenge = box.router.authenticate(invite(box), peer)
    assert not isinstance(challenge, Caller) and challenge.status == 407
    offered = parse_credentials(challenge.headers.get_all("Proxy-Authenticate")[0])
    nonce = offered.get("nonce") or ""
    digest = response_digest("MD5", "201", "box", PASSWORD, "INVITE", "sip:202@box", nonce)
    authorization = (
        f'Digest username="201", realm="box", nonce="{nonce}", uri="sip:202@box", '
        f'response="{digest}", algorithm=MD5'
    )
    caller = box.router.authenticate(invite(box, authorization), peer)
    assert caller == AuthenticatedCaller("201", "Anne")
    box.router.set_trunks([{"name": "tdc", "host": "127.0.0.1", "port": 5070}])
    trunk = box.router.authenticate(invite(box), peer)
    assert isinstance(trunk, Caller) and not isinstance(trunk, AuthenticatedCaller)
    assert trunk.number == "201"  # From says 201, but it may not change 201's features
    assert box.router.route(trunk, "*26#") == 403


def test_codes_as_the_dial_plan_reads_them() -> None:
    # the router and the FXS collector share one plan: what the router routes is a match
    box = Box()
    assert box.router.plan.match("*21*202#") == FeatureMatch(Feature.FORWARD_UNCONDITIONAL, "202")
    assert box.router.plan.extensions == frozenset(EXTENSIONS)


def test_new_users_apply_even_when_the_feature_database_refuses(box: Box) -> None:
    box.register("201")
    box.set("201", dnd=True)
    box.features.db.execute(
        "CREATE TRIGGER no_deletes BEFORE DELETE ON overrides "
        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    box.users.append(user("211"))
    box.users[0]["forward"] = {"busy": "202"}  # 201's configuration changes
    box.router.set_users(box.users)  # logged, not raised: calls keep flowing
    assert "211" in box.router.plan.extensions
    # the stale override could not be dropped: it still holds (as on disk) until it can
    assert box.features.overridden("201") and box.route("201") == 486
    box.features.db.execute("DROP TRIGGER no_deletes")
    box.router.set_users(box.users)
    assert not box.features.overridden("201")
    assert box.features.state("201") == FeatureState(forward_busy="202")
