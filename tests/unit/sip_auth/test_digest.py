"""Digest auth against the published RFC examples and the attacks it must refuse."""

from __future__ import annotations

import pytest

from firmware.sip.digest import (
    Credentials,
    DigestAuthenticator,
    DigestError,
    parse_credentials,
    response_digest,
)


def test_rfc2617_md5_example() -> None:
    got = response_digest(
        "MD5", "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
        "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth",
    )  # fmt: skip
    assert got == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    got = response_digest(
        algorithm, "Mufasa", "http-auth@example.org", "Circle of Life", "GET", "/dir/index.html",
        "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "auth",
    )  # fmt: skip
    assert got == expected


def test_parse_credentials() -> None:
    c = parse_credentials(
        'Digest username="101", realm="skillepunkt", nonce="abc", uri="sip:box", '
        'response="0123", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="x\\"y"'
    )
    assert c.scheme == "Digest"
    assert c.params["username"] == "101" and c.params["cnonce"] == 'x"y'
    assert c.params["algorithm"] == "SHA-256" and c.params["nc"] == "00000001"
    for bad in (
        "Digest",
        'Digest username="a", username="b"',
        'Digest a="unterminated',
        "x" * 5000,
    ):
        with pytest.raises(DigestError):
            parse_credentials(bad)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def answer(
    auth: DigestAuthenticator, algorithm: str, password: str, nc: str = "00000001"
) -> Credentials:
    challenge = parse_credentials(auth.challenges()[0 if algorithm == "SHA-256" else 1])
    nonce = challenge.params["nonce"]
    resp = response_digest(
        algorithm, "101", "skillepunkt", password, "REGISTER", "sip:box", nonce, nc, "c1", "auth"
    )
    return Credentials(
        "Digest",
        {"username": "101", "realm": "skillepunkt", "nonce": nonce, "uri": "sip:box", "response": resp,
         "algorithm": algorithm, "qop": "auth", "nc": nc, "cnonce": "c1"},
    )  # fmt: skip


USERS = {"101": "s3cret-password"}


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_round_trip_each_algorithm(algorithm: str) -> None:
    auth = DigestAuthenticator("skillepunkt", clock=Clock())
    verdict = auth.verify(answer(auth, algorithm, "s3cret-password"), "REGISTER", USERS.get)
    assert verdict.ok and verdict.username == "101"


def test_challenges_offer_sha256_first_then_md5() -> None:
    auth = DigestAuthenticator("skillepunkt")
    values = [parse_credentials(c).params for c in auth.challenges()]
    assert [v["algorithm"] for v in values] == ["SHA-256", "MD5"]
    assert values[0]["nonce"] == values[1]["nonce"] and values[0]["qop"] == "auth"


def test_refusals() -> None:
    clock = Clock()
    auth = DigestAuthenticator("skillepunkt", clock=clock, lifetime=300)
    assert (
        auth.verify(answer(auth, "MD5", "wrong-password"), "REGISTER", USERS.get).reason
        == "wrong password"
    )
    good = answer(auth, "MD5", "s3cret-password")
    assert not auth.verify(good, "INVITE", USERS.get).ok  # method is part of the digest
    assert auth.verify(good, "REGISTER", USERS.get).ok
    assert auth.verify(good, "REGISTER", USERS.get).reason == "nonce count replayed"
    unknown = Credentials("Digest", {**good.params, "username": "999"})
    assert auth.verify(unknown, "REGISTER", USERS.get).reason == "unknown user"
    nonce = good.params["nonce"]
    forged = Credentials(
        "Digest", {**good.params, "nonce": nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")}
    )
    assert auth.verify(forged, "REGISTER", USERS.get).reason == "unknown nonce"
    other_realm = Credentials("Digest", {**good.params, "realm": "other"})
    assert auth.verify(other_realm, "REGISTER", USERS.get).reason == "wrong realm"
    no_cnonce = Credentials("Digest", {k: v for k, v in good.params.items() if k != "cnonce"})
    assert not auth.verify(no_cnonce, "REGISTER", USERS.get).ok
    # a nonce from another boot (another key) is not ours
    assert (
        auth.verify(
            answer(DigestAuthenticator("skillepunkt", clock=clock), "MD5", "s3cret-password"),
            "REGISTER",
            USERS.get,
        ).reason
        == "unknown nonce"
    )


def test_expired_nonce_is_stale_not_wrong() -> None:
    clock = Clock()
    auth = DigestAuthenticator("skillepunkt", clock=clock, lifetime=300)
    creds = answer(auth, "SHA-256", "s3cret-password")
    clock.now += 301
    verdict = auth.verify(creds, "REGISTER", USERS.get)
    assert not verdict.ok and verdict.stale
    assert "stale=true" in auth.challenges(stale=True)[0]
    # a wrong password with an old nonce is still just wrong (stale only for the right one)
    bad = answer(auth, "SHA-256", "nope-nope")
    clock.now += 301
    assert not auth.verify(bad, "REGISTER", USERS.get).stale


def test_increasing_nonce_counts_are_accepted() -> None:
    auth = DigestAuthenticator("skillepunkt", clock=Clock())
    challenge = parse_credentials(auth.challenges()[1]).params
    for n in (1, 2, 5):
        nc = f"{n:08x}"
        resp = response_digest(
            "MD5",
            "101",
            "skillepunkt",
            "s3cret-password",
            "REGISTER",
            "sip:box",
            challenge["nonce"],
            nc,
            "c",
            "auth",
        )
        creds = Credentials(
            "Digest",
            {
                "username": "101",
                "realm": "skillepunkt",
                "nonce": challenge["nonce"],
                "uri": "sip:box",
                "response": resp,
                "algorithm": "MD5",
                "qop": "auth",
                "nc": nc,
                "cnonce": "c",
            },
        )
        assert auth.verify(creds, "REGISTER", USERS.get).ok
