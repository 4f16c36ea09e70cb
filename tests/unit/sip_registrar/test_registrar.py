"""The registrar against RFC 3261 §10.3: digest, contacts, expiry, ordering, refusals."""

from __future__ import annotations

import logging

import pytest

from firmware.sip import Request
from firmware.sip.digest import DigestAuthenticator
from firmware.sip.peer import Peer
from firmware.sip.registrar import RegistrarSettings

from .conftest import (
    PASSWORDS,
    REALM,
    Clock,
    Phone,
    World,
    authorization,
    challenge_params,
    contact_expires,
    register,
)


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_full_register_flow(world: World, algorithm: str) -> None:
    phone = Phone("101", algorithm=algorithm, host="10.0.0.7", port=40123)
    first = phone.send(world.registrar, expires=3600)
    assert first.status == 401
    offered = [challenge_params(first, a)["algorithm"] for a in ("SHA-256", "MD5")]
    assert offered == ["SHA-256", "MD5"]  # both, the strongest first
    assert first.to.tag  # a UAS tags the To of its responses
    assert world.location.contacts("101") == ()

    auth = authorization(challenge_params(first, algorithm), "101", PASSWORDS["101"])
    ok = phone.send(world.registrar, expires=3600, authorization=auth)
    assert ok.status == 200
    assert contact_expires(ok) == {"sip:101@10.0.0.7:40123": 3600}
    assert ok.date is not None and ok.date.timestamp() == int(world.clock.now)
    (binding,) = world.location.contacts("101")
    assert binding.peer == Peer("udp", "10.0.0.7", 40123)  # where it came from (NAT)
    assert binding.call_id == phone.call_id and binding.cseq == 2
    assert binding.user_agent == "Yealink SIP-T54W 96.86.0.100"
    assert binding.expires_at == world.clock.now + 3600
    assert world.registrar.stats["registered"] == 1


def test_default_and_clamped_expiry(world: World) -> None:
    assert contact_expires(Phone("101").register(world.registrar)) == {
        "sip:101@192.168.1.50:5060": 3600
    }
    ok = Phone("102", host="192.168.1.51").register(world.registrar, expires=86400)
    assert contact_expires(ok) == {"sip:102@192.168.1.51:5060": 3600}


def test_wrong_password_is_challenged_again(world: World) -> None:
    response = Phone("101", password="not-the-password").register(world.registrar)
    assert response.status == 401  # a fresh challenge, as for any failed check
    assert "stale" not in response.headers.get("WWW-Authenticate", "")
    assert world.location.contacts("101") == ()
    assert world.registrar.stats["auth_failed"] == 1


def test_unknown_user_looks_like_a_known_one(world: World) -> None:
    """Extension scanners must not tell 999 from 101 by the answer."""
    unknown, known = Phone("999", password="guess1234"), Phone("101", password="guess1234")
    first_unknown, first_known = unknown.send(world.registrar), known.send(world.registrar)
    assert first_unknown.status == first_known.status == 401
    assert unknown.register(world.registrar).status == known.register(world.registrar).status == 401
    assert world.location.contacts("999") == ()


def test_registering_someone_else(world: World) -> None:
    # 102 authenticates fine but asks to bind 101: forbidden
    mismatch = Phone("101", username="102", host="192.168.1.51")
    assert mismatch.register(world.registrar).status == 403
    # an authenticated phone may learn that an extension does not exist
    assert Phone("999", username="102").register(world.registrar).status == 404
    assert world.location.contacts("101") == ()
    assert world.registrar.guard.locked_out() == ([], [])  # right passwords: no tally


def test_stale_nonce(world: World) -> None:
    phone = Phone("101")
    challenge = challenge_params(phone.send(world.registrar), "SHA-256")
    world.clock.advance(world.auth.lifetime + 1)
    stale = phone.send(
        world.registrar, authorization=authorization(challenge, "101", "anne-secret-1")
    )
    assert stale.status == 401
    assert "stale=true" in stale.headers.get("WWW-Authenticate", "")
    assert world.registrar.stats["auth_failed"] == 0  # the password was right
    fresh = challenge_params(stale, "SHA-256")
    ok = phone.send(world.registrar, authorization=authorization(fresh, "101", "anne-secret-1"))
    assert ok.status == 200


def test_nonce_from_before_a_restart_is_stale_not_a_failure(world: World) -> None:
    """Nonce keys are per boot: phones holding an old nonce retry silently."""
    old_boot = DigestAuthenticator(REALM, clock=world.clock)
    challenge = challenge_params(
        register().make_response(401, headers=[("WWW-Authenticate", old_boot.challenges()[0])]),
        "SHA-256",
    )
    phone = Phone("101")
    response = phone.send(world.registrar, authorization=authorization(challenge, "101", "x"))
    assert response.status == 401 and "stale=true" in response.headers.get("WWW-Authenticate", "")
    assert world.registrar.stats["auth_failed"] == 0


def test_multiple_contacts_sorted_by_q_then_recency(world: World) -> None:
    desk = Phone("101", host="192.168.1.50")
    both = ("<sip:101@192.168.1.50:5060>;q=0.5", "<sip:101@192.168.1.60:5060>;q=0.9")
    assert desk.register(world.registrar, contacts=both).status == 200
    world.clock.advance(10)
    softphone = Phone("101", host="192.168.1.70")
    ok = softphone.register(world.registrar)  # no q: counts as 1.0
    assert ok.status == 200
    assert contact_expires(ok) == {
        "sip:101@192.168.1.50:5060": 3590,
        "sip:101@192.168.1.60:5060": 3590,
        "sip:101@192.168.1.70:5060": 3600,
    }
    assert [b.contact for b in world.location.contacts("101")] == [
        "sip:101@192.168.1.70:5060",
        "sip:101@192.168.1.60:5060",
        "sip:101@192.168.1.50:5060",
    ]
    assert "q=0.9" in ok.headers.get_all("Contact")[1]
    world.clock.advance(10)
    desk.register(world.registrar, contacts=("<sip:101@192.168.1.50:5060>",))  # refresh, q 1.0
    assert world.location.contacts("101")[0].contact == "sip:101@192.168.1.50:5060"


def test_expiry_and_sweep(world: World) -> None:
    Phone("101").register(world.registrar, expires=120)
    Phone("102", host="192.168.1.51").register(world.registrar, expires=600)
    assert world.location.next_expiry() == world.clock.now + 120
    world.clock.advance(119)
    assert len(world.location.contacts("101")) == 1
    ok = Phone("101", host="192.168.1.99").send(world.registrar)  # the 401 only
    assert ok.status == 401
    world.clock.advance(2)
    assert world.location.contacts("101") == ()  # lapsed: invisible before any sweep
    lapsed = world.registrar.sweep()
    assert [b.aor for b in lapsed] == ["101"]
    assert len(world.location) == 1 and world.location.aors() == ["102"]
    assert world.registrar.sweep() == []
    count = world.location.db.execute("SELECT count(*) FROM bindings").fetchone()[0]
    assert count == 1


def test_star_removes_everything(world: World) -> None:
    phone = Phone("101")
    two = ("<sip:101@192.168.1.50:5060>", "<sip:101@192.168.1.50:5062>")
    assert phone.register(world.registrar, contacts=two).status == 200
    ok = phone.register(world.registrar, contacts=("*",), expires=0)
    assert ok.status == 200 and ok.headers.get_all("Contact") == []
    assert world.location.contacts("101") == () and len(world.location) == 0


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [
        (("*",), 3600),  # * needs Expires: 0
        (("*",), None),
        (("*", "<sip:101@192.168.1.50>"), 0),  # * alone or not at all
    ],
)
def test_star_misuse_is_400(world: World, contacts: tuple[str, ...], expires: int | None) -> None:
    phone = Phone("101")
    phone.register(world.registrar)
    assert phone.register(world.registrar, contacts=contacts, expires=expires).status == 400
    assert len(world.location.contacts("101")) == 1


def test_per_contact_expires(world: World) -> None:
    phone = Phone("101")
    contacts = (
        "<sip:101@192.168.1.50:5060>;expires=300",
        "<sip:101@192.168.1.50:5062>",
        "<sip:101@192.168.1.50:5064>;expires=99999",
    )
    ok = phone.register(world.registrar, contacts=contacts, expires=1200)
    assert contact_expires(ok) == {
        "sip:101@192.168.1.50:5060": 300,  # the parameter wins over the header
        "sip:101@192.168.1.50:5062": 1200,
        "sip:101@192.168.1.50:5064": 3600,  # clamped to the maximum
    }
    world.clock.advance(100)
    ok = phone.register(world.registrar, contacts=("<sip:101@192.168.1.50:5062>;expires=0",))
    assert contact_expires(ok) == {
        "sip:101@192.168.1.50:5060": 200,  # remaining time
        "sip:101@192.168.1.50:5064": 3500,
    }


def test_interval_too_brief(world: World) -> None:
    phone = Phone("101")
    response = phone.register(world.registrar, expires=30)
    assert response.status == 423 and response.min_expires == 60
    response = phone.register(world.registrar, contacts=("<sip:101@192.168.1.50>;expires=59",))
    assert response.status == 423
    assert world.location.contacts("101") == ()
    assert phone.register(world.registrar, expires=60).status == 200
    assert phone.register(world.registrar, expires=0).status == 200  # 0 removes, never 423
    assert world.location.contacts("101") == ()


def test_cseq_ordering(world: World) -> None:
    phone = Phone("101")
    phone.register(world.registrar, expires=600)  # CSeq 2 stored
    stored = world.location.contacts("101")
    challenge = challenge_params(phone.send(world.registrar), "SHA-256")  # CSeq 3: 401

    def auth(nc: int) -> str:
        return authorization(challenge, "101", PASSWORDS["101"], nc=nc)

    for old in (1, 2):  # same Call-ID, CSeq not higher than the stored 2: out of order
        request = register(call_id=phone.call_id, cseq=old, expires=3600, authorization=auth(old))
        response = world.registrar.handle(request, phone.peer)
        assert response.status == 500
        assert world.location.contacts("101") == stored  # nothing changed
    star = register(
        call_id=phone.call_id, cseq=2, contacts=("*",), expires=0, authorization=auth(3)
    )
    assert world.registrar.handle(star, phone.peer).status == 500
    assert world.location.contacts("101") == stored
    # a new Call-ID (the phone rebooted) with a low CSeq replaces the binding
    reboot = register(call_id="after-reboot", cseq=1, expires=3600, authorization=auth(4))
    assert world.registrar.handle(reboot, phone.peer).status == 200
    (binding,) = world.location.contacts("101")
    assert binding.call_id == "after-reboot" and binding.cseq == 1


def test_query(world: World) -> None:
    phone = Phone("101")
    phone.register(world.registrar, expires=600)
    world.clock.advance(60)
    before = world.location.contacts("101")
    query = phone.register(world.registrar, contacts=())
    assert query.status == 200
    assert contact_expires(query) == {"sip:101@192.168.1.50:5060": 540}
    assert world.location.contacts("101") == before
    assert Phone("102").register(world.registrar, contacts=()).headers.get_all("Contact") == []


def test_brute_force_lockout_and_release(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="firmware.sip.registrar")
    attacker = Phone("101", host="203.0.113.9", password="guess-0000")
    for _ in range(9):
        assert attacker.register(world.registrar).status == 401
    assert attacker.register(world.registrar).status == 403  # the 10th failure locks
    assert world.registrar.guard.locked_out()[0] == ["203.0.113.9"]
    # now even the right password is refused without being looked at
    attacker.password = PASSWORDS["101"]
    assert attacker.send(world.registrar).status == 403
    assert attacker.register(world.registrar).status == 403
    # the real phone on its own address is not affected
    assert Phone("101").register(world.registrar).status == 200
    world.clock.advance(world.registrar.settings.lockout + 1)
    assert attacker.register(world.registrar).status == 200
    # logged without the password or the digest response
    assert "REGISTER authentication failed" in caplog.text
    for record in caplog.records:
        text = str(record.__dict__)
        assert "guess-0000" not in text and PASSWORDS["101"] not in text
        assert "response=" not in text


def test_account_lockout_spares_the_registered_phone(world: World) -> None:
    settings = world.registrar.settings
    real = Phone("101")
    assert real.register(world.registrar).status == 200
    for n in range(settings.max_failures_per_account):  # from many addresses: per account
        Phone("101", host=f"198.51.100.{n + 1}", password="guess-1234").register(world.registrar)
    assert world.registrar.guard.locked_out()[1] == ["101"]
    newcomer = Phone("101", host="192.168.1.77")
    assert newcomer.register(world.registrar).status == 403
    # the same attack through another To cannot dodge the account tally
    dodge = Phone("999", username="101", host="192.168.1.78")
    assert dodge.register(world.registrar).status == 403
    assert real.register(world.registrar).status == 200  # holds a binding: keeps working
    world.clock.advance(settings.lockout + 1)
    world.registrar.sweep()
    assert world.registrar.guard.locked_out() == ([], [])
    assert newcomer.register(world.registrar).status == 200


def test_a_success_clears_the_source_tally(world: World) -> None:
    """Phones behind one NAT: one misconfigured phone must not lock out the site."""
    broken = Phone("102", host="198.51.100.1", port=5070, password="stale-password")
    good = Phone("101", host="198.51.100.1", port=5080)
    for _ in range(3):  # 15 failures from the address, never 10 without a success between
        for _ in range(5):
            assert broken.register(world.registrar).status == 401
        assert good.register(world.registrar).status == 200


def test_malformed_headers_get_400_not_an_exception(world: World) -> None:
    phone = Phone("101")
    bad_contacts = [
        ("<sip:101@192.168.1.50>;q=2",),
        ("<sip:101@192.168.1.50>;expires=soon",),
        ('<sip:101@192.168.1.50>;+sip.instance="<urn:x>";reg-id=x',),
        ("<sip:101@192.168.1.50>", "<sip:101@192.168.1.50>"),
        ("<mailto:101@example.com>",),
    ]
    for contacts in bad_contacts:
        assert phone.register(world.registrar, contacts=contacts).status == 400, contacts
    assert phone.register(world.registrar, expires="soon").status == 400
    for header in ("Path: <sip:edge.example", "Supported: a b", "Require: @"):
        response = world.registrar.handle(register(extra=(header,)), phone.peer)
        assert response.status == 400, header
        assert response.headers.get("Warning", "").startswith("399 skillepunkt ")
    malformed = phone.send(world.registrar, authorization='Digest username="101", nonce="x')
    assert malformed.status == 400
    assert world.location.contacts("101") == ()


def test_refusals_before_authentication(world: World) -> None:
    phone = Phone("101")
    assert phone.send(world.registrar, extra=("Require: outbound, path",)).status == 420
    response = phone.send(world.registrar, extra=("Require: outbound, path",))
    assert response.headers.get("Unsupported") == "outbound"
    tel = register(to="<tel:+4512345678>")
    assert world.registrar.handle(tel, phone.peer).status == 404
    options = register()
    options.method = "OPTIONS"
    assert world.registrar.handle(options, phone.peer).status == 405


def test_domain_restriction(tmp_path: object) -> None:
    w = World(settings=RegistrarSettings(domains=frozenset({"pbx.local", "10.0.0.1"})))
    phone = Phone("101")
    assert phone.register(w.registrar).status == 200
    assert phone.register(w.registrar, uri="sip:10.0.0.1").status == 200
    assert phone.send(w.registrar, uri="sip:evil.example").status == 404
    other = register(to="<sip:101@evil.example>")
    assert w.registrar.handle(other, phone.peer).status == 404
    w.close()


def test_contact_limit_evicts_the_oldest(world: World) -> None:
    for n in range(12):
        Phone("101", port=6000 + n).register(world.registrar)
        world.clock.advance(1)
    ports = sorted(b.peer.port for b in world.location.contacts("101"))
    assert ports == list(range(6002, 6012))
    many = tuple(f"<sip:101@192.168.1.50:{7000 + n}>" for n in range(11))
    assert Phone("101").register(world.registrar, contacts=many).status == 403


def test_instance_id_replaces_the_old_address(world: World) -> None:
    instance = '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'
    before = Phone("101", host="192.168.1.50")
    before.register(
        world.registrar, contacts=(f"<sip:101@192.168.1.50>;+sip.instance={instance};reg-id=1",)
    )
    after = Phone("101", host="192.168.1.66")  # new DHCP lease, same phone
    ok = after.register(
        world.registrar, contacts=(f"<sip:101@192.168.1.66>;+sip.instance={instance};reg-id=1",)
    )
    assert ok.status == 200
    (binding,) = world.location.contacts("101")
    assert binding.contact == "sip:101@192.168.1.66"
    assert binding.instance == "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
    assert binding.reg_id == 1
    assert ok.headers.get("Contact") == (
        f"<sip:101@192.168.1.66>;expires=3600;+sip.instance={instance};reg-id=1"
    )
    # a second flow of the same instance is a binding of its own
    flow2 = Phone("101", host="192.168.1.66", port=5062)
    flow2.register(
        world.registrar, contacts=(f"<sip:101@192.168.1.66>;+sip.instance={instance};reg-id=2",)
    )
    assert sorted(b.reg_id or 0 for b in world.location.contacts("101")) == [1, 2]


def test_path_is_stored_and_echoed(world: World) -> None:
    path = "<sip:edge.example;lr>"
    ok = Phone("101").register(world.registrar, extra=(f"Path: {path}", "Supported: path"))
    assert ok.status == 200 and ok.headers.get_all("Path") == [path]
    assert world.location.contacts("101")[0].path == (path,)
    quiet = Phone("102", host="192.168.1.51").register(world.registrar, extra=(f"Path: {path}",))
    assert quiet.headers.get_all("Path") == []  # the phone did not say it understands Path


def test_storage_failure_is_500_and_changes_nothing(world: World) -> None:
    phone = Phone("101")
    phone.register(world.registrar)
    stored = world.location.contacts("101")
    world.location.db.close()
    response = phone.register(world.registrar, contacts=("<sip:101@192.168.1.50:5099>",))
    assert response.status == 500 and response.headers.get("Retry-After") == "30"
    assert world.location.contacts("101") == stored


def test_request_without_to_still_gets_an_answer(clock: Clock) -> None:
    w = World(clock=clock)
    request = Request("REGISTER", "sip:pbx.local", [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"),
                                                    ("Call-ID", "x"), ("CSeq", "1 REGISTER")])  # fmt: skip
    response = w.registrar.handle(request, Peer("udp", "192.0.2.1", 5060))
    assert response.status == 400 and response.headers.get("Call-ID") == "x"
    w.close()
