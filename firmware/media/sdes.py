"""SDES keying for SRTP (RFC 4568 ``a=crypto``) and the per-trunk/extension SRTP policy.

Pure functions on strings: the caller takes ``proto`` and the ``a=crypto`` values from
its SDP model (``firmware.sip.sdp.Media.proto`` / ``.values("crypto")``) and puts ours
back with ``str(attribute)``. Nothing here touches sockets or libsrtp; `srtp.py` turns
a negotiated pair of `CryptoAttribute` into an `SrtpSession`.

Wire format (RFC 4568 §9.1, §6.1)::

    a=crypto:<tag> <suite> inline:<base64(key||salt)>[|<lifetime>][|<MKI>:<length>] [params]

Suites: AES_CM_128_HMAC_SHA1_80/_32 (RFC 4568) and AEAD_AES_128_GCM/AEAD_AES_256_GCM
(RFC 7714), the ones pylibsrtp's libsrtp build offers. MKI is parsed but an offer that
uses one is not selectable (pylibsrtp cannot key by MKI); so are offers with several
keys, the UNENCRYPTED_*/UNAUTHENTICATED_SRTP/FEC_* session parameters, or a KDR other
than 0. Such lines are skipped in favour of the next one, as RFC 4568 §7.1.2 wants.

Policy (`SrtpPolicy`) per trunk/extension: ``off`` never keys SRTP, ``optional``
uses it whenever the peer can (best-effort SRTP in RTP/AVP offers included) and
``mandatory`` refuses a call (488) that would carry media in clear. `answer_offer`
says what to answer to a remote offer; `make_offer` and `accept_answer` do the other
direction.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum

#: SIP status for an offer we cannot accept for media reasons.
NOT_ACCEPTABLE_HERE = 488
#: Lifetime libsrtp enforces anyway (2^48 packets for SRTP, 2^31 for SRTCP).
MAX_LIFETIME = 2**48
#: RFC 4568 §6.1: MKI length is 1..128 bytes.
MAX_MKI_LENGTH = 128
#: A tag is 1..9 digits (RFC 4568 §9.1).
MAX_TAG = 999_999_999


class SdesError(ValueError):
    """A malformed ``a=crypto`` value, or an answer that does not match our offer."""


class CryptoSuite(StrEnum):
    """SRTP crypto suites we can key (the SDES names)."""

    AES_CM_128_HMAC_SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
    AES_CM_128_HMAC_SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
    AEAD_AES_128_GCM = "AEAD_AES_128_GCM"
    AEAD_AES_256_GCM = "AEAD_AES_256_GCM"

    @property
    def key_length(self) -> int:
        return 32 if self is CryptoSuite.AEAD_AES_256_GCM else 16

    @property
    def salt_length(self) -> int:
        """RFC 3711 salts are 112 bits; RFC 7714 (GCM) uses 96."""
        return 12 if self.name.startswith("AEAD") else 14

    @property
    def master_length(self) -> int:
        """Bytes of the ``inline:`` key material: master key then master salt."""
        return self.key_length + self.salt_length


#: What we offer, strongest-first as the usual phones do. GCM is left out by default:
#: few SIP phones and trunks accept it yet and an unknown first line costs nothing, but
#: a shorter offer is friendlier to old parsers. Pass ``ALL_SUITES`` to include it.
DEFAULT_SUITES: tuple[CryptoSuite, ...] = (
    CryptoSuite.AES_CM_128_HMAC_SHA1_80,
    CryptoSuite.AES_CM_128_HMAC_SHA1_32,
)
ALL_SUITES: tuple[CryptoSuite, ...] = tuple(CryptoSuite)

#: Session parameters that make a line unusable for us (we never send clear SRTP/SRTCP).
_REFUSED_PARAMS = ("UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP")
_TAG_RE = re.compile(r"[0-9]{1,9}")
_SUITE_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_LIFETIME_RE = re.compile(r"(?:2\^([0-9]{1,2})|([0-9]{1,20}))")
_MKI_RE = re.compile(r"([0-9]{1,39}):([0-9]{1,3})")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_WSH_RE = re.compile(r"WSH=([0-9]{1,9})")
_KDR_RE = re.compile(r"KDR=([0-9]{1,2})")


@dataclass(frozen=True, slots=True)
class KeyParams:
    """One ``inline:`` key: master key||salt, and the optional lifetime and MKI."""

    material: bytes
    lifetime: int | None = None
    mki: int | None = None
    mki_length: int | None = None
    #: Lifetime as written (``2^20`` or ``1048576``), kept so formatting round-trips.
    lifetime_text: str | None = None

    @property
    def has_mki(self) -> bool:
        return self.mki_length is not None

    def __str__(self) -> str:
        text = "inline:" + base64.b64encode(self.material).decode("ascii")
        if self.lifetime is not None:
            text += "|" + (self.lifetime_text or str(self.lifetime))
        if self.mki_length is not None:
            text += f"|{self.mki}:{self.mki_length}"
        return text

    def key(self, suite: CryptoSuite) -> bytes:
        """The master key part for ``suite``."""
        return self.material[: suite.key_length]

    def salt(self, suite: CryptoSuite) -> bytes:
        return self.material[suite.key_length : suite.master_length]


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto`` value. ``suite`` is the raw name (an unknown suite parses: the
    offer may list suites we cannot do). Render with ``str()``."""

    tag: int
    suite: str
    keys: tuple[KeyParams, ...]
    session_params: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        parts = [str(self.tag), self.suite, ";".join(str(k) for k in self.keys)]
        parts.extend(self.session_params)
        return " ".join(parts)

    @property
    def known_suite(self) -> CryptoSuite | None:
        try:
            return CryptoSuite(self.suite)
        except ValueError:
            return None

    @property
    def window_size_hint(self) -> int | None:
        """``WSH=`` (RFC 4568 §6.3.7): the replay window the sender asks for."""
        for param in self.session_params:
            match = _WSH_RE.fullmatch(param)
            if match:
                return int(match.group(1))
        return None

    def unusable_reason(self) -> str | None:
        """Why we cannot key SRTP from this line, or None if we can."""
        suite = self.known_suite
        if suite is None:
            return f"unsupported crypto suite {self.suite}"
        if len(self.keys) != 1:
            return "more than one key (MKI key rollover) is not supported"
        key = self.keys[0]
        if len(key.material) != suite.master_length:
            return (
                f"{suite} needs {suite.master_length} bytes of key||salt, got {len(key.material)}"
            )
        if key.has_mki:
            return "MKI is not supported"
        for param in self.session_params:
            if param in _REFUSED_PARAMS:
                return f"session parameter {param} is not supported"
            kdr = _KDR_RE.fullmatch(param)
            if kdr:
                if int(kdr.group(1)) != 0:
                    return f"key derivation rate {param} is not supported"
                continue
            if _WSH_RE.fullmatch(param) or param.startswith("-"):
                continue  # '-' marks a parameter the receiver may ignore (§6.3)
            return f"session parameter {param} is not supported"
        return None


# --------------------------------------------------------------------------- parse/format


def parse_crypto(value: str) -> CryptoAttribute:
    """Parse the value of an ``a=crypto`` line (without ``a=crypto:``).

    Raises `SdesError` for a malformed line. An unknown suite or key method is not an
    error here (it is a reason to skip the line when answering, see `unusable_reason`),
    but for a known suite the key length is checked.
    """
    fields = value.strip().split()
    if len(fields) < 3:
        raise SdesError(f"a=crypto needs <tag> <suite> <key-params>: {value!r}")
    tag_text, suite, key_text, *params = fields
    if not _TAG_RE.fullmatch(tag_text):
        raise SdesError(f"bad a=crypto tag {tag_text!r}")
    if not _SUITE_RE.fullmatch(suite):
        raise SdesError(f"bad crypto suite name {suite!r}")
    keys = tuple(_parse_key(part) for part in key_text.split(";"))
    attribute = CryptoAttribute(int(tag_text), suite, keys, tuple(params))
    known = attribute.known_suite
    if known is not None:
        for key in keys:
            if len(key.material) != known.master_length:
                raise SdesError(
                    f"{known} needs {known.master_length} bytes of key||salt, "
                    f"got {len(key.material)}"
                )
    return attribute


def _parse_key(text: str) -> KeyParams:
    method, sep, info = text.partition(":")
    if not sep or method != "inline":
        raise SdesError(f"unsupported key method in {text!r} (only inline:)")
    base, *rest = info.split("|")
    if not _BASE64_RE.fullmatch(base) or len(base) % 4:
        raise SdesError(f"key is not base64: {base!r}")
    try:
        material = base64.b64decode(base, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SdesError(f"key is not base64: {exc}") from None
    if len(rest) > 2:
        raise SdesError(f"too many '|' fields in {text!r}")
    lifetime: int | None = None
    lifetime_text: str | None = None
    mki: int | None = None
    mki_length: int | None = None
    for part in rest:
        mki_match = _MKI_RE.fullmatch(part)
        if mki_match:
            if mki_length is not None:
                raise SdesError(f"two MKI fields in {text!r}")
            mki, mki_length = int(mki_match.group(1)), int(mki_match.group(2))
            if not 1 <= mki_length <= MAX_MKI_LENGTH:
                raise SdesError(f"MKI length {mki_length} outside 1..{MAX_MKI_LENGTH}")
            if mki >= 256**mki_length:
                raise SdesError(f"MKI {mki} does not fit in {mki_length} bytes")
            continue
        life_match = _LIFETIME_RE.fullmatch(part)
        if life_match is None or lifetime is not None or mki_length is not None:
            raise SdesError(f"bad lifetime/MKI field {part!r} in {text!r}")
        if life_match.group(1) is not None:
            lifetime = 2 ** int(life_match.group(1))
        else:
            lifetime = int(life_match.group(2))
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise SdesError(f"key lifetime {part} outside 1..2^48")
        lifetime_text = part
    return KeyParams(material, lifetime, mki, mki_length, lifetime_text)


def format_crypto(attribute: CryptoAttribute) -> str:
    """The ``a=crypto`` value (same as ``str(attribute)``)."""
    return str(attribute)


def generate_key(suite: CryptoSuite) -> bytes:
    """Fresh master key||salt from the OS CSPRNG."""
    return secrets.token_bytes(suite.master_length)


def new_crypto(tag: int, suite: CryptoSuite) -> CryptoAttribute:
    """An ``a=crypto`` line with a fresh key and no lifetime/MKI/params."""
    if not 1 <= tag <= MAX_TAG:
        raise SdesError(f"tag {tag} outside 1..{MAX_TAG}")
    return CryptoAttribute(tag, str(suite), (KeyParams(generate_key(suite)),))


def parse_crypto_lines(values: Iterable[str]) -> list[CryptoAttribute]:
    """Parse every ``a=crypto`` value of a stream, skipping malformed ones: RFC 4568
    §7.1.2 says to ignore lines we cannot use, and one bad line must not sink the call."""
    result = []
    for value in values:
        try:
            result.append(parse_crypto(value))
        except SdesError:
            continue
    return result


# --------------------------------------------------------------------------- offer/answer


def select_crypto(
    offered: Sequence[CryptoAttribute], supported: Iterable[CryptoSuite] = ALL_SUITES
) -> tuple[CryptoAttribute, CryptoAttribute] | None:
    """Pick the first usable offered line (the offerer's preference order) and make our
    answer: same tag, same suite, our own fresh key. Returns ``(remote, local)``:
    ``remote`` keys what the peer sends us, ``local`` is our ``a=crypto`` answer and keys
    what we send. None when no line is usable."""
    ours = set(supported)
    for attribute in offered:
        suite = attribute.known_suite
        if suite is None or suite not in ours or attribute.unusable_reason() is not None:
            continue
        return attribute, new_crypto(attribute.tag, suite)
    return None


class SrtpPolicy(StrEnum):
    """Per trunk/extension: whether media toward it is SRTP."""

    OFF = "off"
    OPTIONAL = "optional"
    MANDATORY = "mandatory"


class Verdict(Enum):
    PLAIN = "plain"  # answer RTP/AVP, no crypto
    SRTP = "srtp"  # answer with our a=crypto
    REFUSE = "refuse"  # 488 Not Acceptable Here


@dataclass(frozen=True, slots=True)
class SdesDecision:
    """What to do with one offered stream.

    ``proto`` is what our answer's m= line carries: the offer's own profile, so
    best-effort SRTP (a=crypto in an RTP/AVP offer, as many phones, Asterisk and
    FreeSWITCH send it) is answered in kind. With ``SRTP``, ``remote`` keys the
    peer's packets and ``local`` is our answer line. With ``REFUSE``, ``status`` is 488
    and ``reason`` says why (for a Warning header and the log).
    """

    verdict: Verdict
    proto: str
    reason: str = ""
    remote: CryptoAttribute | None = None
    local: CryptoAttribute | None = None

    @property
    def status(self) -> int | None:
        return NOT_ACCEPTABLE_HERE if self.verdict is Verdict.REFUSE else None


def is_secure_proto(proto: str) -> bool:
    """RTP/SAVP and RTP/SAVPF: the offerer requires SRTP."""
    return proto.upper() in ("RTP/SAVP", "RTP/SAVPF")


def answer_offer(
    policy: SrtpPolicy,
    proto: str,
    crypto_values: Iterable[str],
    supported: Iterable[CryptoSuite] = ALL_SUITES,
) -> SdesDecision:
    """Decide the answer to one offered RTP stream (its m= proto and ``a=crypto`` values).

    ============  ======================  ==========================  ===============
    offer         off                     optional                    mandatory
    ============  ======================  ==========================  ===============
    AVP           plain                   plain                       488
    AVP + crypto  plain (crypto ignored)  SRTP if a suite fits, else  SRTP or 488
                                          plain
    SAVP + crypto 488                     SRTP or 488                 SRTP or 488
    SAVP alone    488 (DTLS-SRTP etc. are not supported)
    ============  ======================  ==========================  ===============
    """
    upper = proto.upper()
    if "TLS" in upper or "DTLS" in upper:
        return SdesDecision(Verdict.REFUSE, proto, f"{proto}: DTLS-SRTP is not supported")
    if not ("RTP/AVP" in upper or "RTP/SAVP" in upper):
        return SdesDecision(Verdict.REFUSE, proto, f"{proto} is not an RTP profile")
    secure = is_secure_proto(proto)
    offered = parse_crypto_lines(crypto_values)
    if policy is SrtpPolicy.OFF:
        if secure:
            return SdesDecision(Verdict.REFUSE, proto, "SRTP is switched off for this peer")
        return SdesDecision(Verdict.PLAIN, proto)
    if not offered:
        if secure:
            return SdesDecision(Verdict.REFUSE, proto, f"{proto} offer without usable a=crypto")
        if policy is SrtpPolicy.MANDATORY:
            return SdesDecision(Verdict.REFUSE, proto, "SRTP is mandatory for this peer")
        return SdesDecision(Verdict.PLAIN, proto)
    chosen = select_crypto(offered, supported)
    if chosen is not None:
        return SdesDecision(Verdict.SRTP, proto, remote=chosen[0], local=chosen[1])
    if secure or policy is SrtpPolicy.MANDATORY:
        reasons = "; ".join(sorted({a.unusable_reason() or a.suite for a in offered}))
        return SdesDecision(Verdict.REFUSE, proto, f"no acceptable crypto suite ({reasons})")
    return SdesDecision(Verdict.PLAIN, proto)


@dataclass(frozen=True, slots=True)
class SdesOffer:
    """What we put in our offer: the m= proto and the ``a=crypto`` lines (keep them: the
    answer is matched against them by `accept_answer`)."""

    proto: str
    crypto: tuple[CryptoAttribute, ...]

    @property
    def values(self) -> list[str]:
        return [str(a) for a in self.crypto]


def make_offer(policy: SrtpPolicy, suites: Sequence[CryptoSuite] = DEFAULT_SUITES) -> SdesOffer:
    """Our offer under ``policy``: off -> RTP/AVP; optional -> best-effort SRTP (RTP/AVP
    with crypto, which plain peers ignore); mandatory -> RTP/SAVP with crypto."""
    if policy is SrtpPolicy.OFF:
        return SdesOffer("RTP/AVP", ())
    if not suites:
        raise SdesError("no crypto suites to offer")
    crypto = tuple(new_crypto(i, suite) for i, suite in enumerate(suites, 1))
    proto = "RTP/SAVP" if policy is SrtpPolicy.MANDATORY else "RTP/AVP"
    return SdesOffer(proto, crypto)


@dataclass(frozen=True, slots=True)
class SdesResult:
    """A negotiated stream: None keys mean plain RTP."""

    local: CryptoAttribute | None
    remote: CryptoAttribute | None

    @property
    def secure(self) -> bool:
        return self.local is not None


def accept_answer(
    policy: SrtpPolicy, offer: SdesOffer, proto: str, crypto_values: Iterable[str]
) -> SdesResult:
    """Check the peer's answer to `make_offer`'s offer.

    The answer must carry exactly one usable ``a=crypto`` that echoes one of our tags with
    the same suite (RFC 4568 §7.1.3). No crypto in the answer means plain RTP, which is
    fine unless we required SRTP. Raises `SdesError` when the answer is unacceptable (the
    caller ends the call).
    """
    answered = parse_crypto_lines(crypto_values)
    if not answered:
        if policy is SrtpPolicy.MANDATORY or is_secure_proto(offer.proto):
            raise SdesError("the answer has no a=crypto but SRTP was required")
        if is_secure_proto(proto):
            raise SdesError(f"answer uses {proto} without a=crypto")
        return SdesResult(None, None)
    if policy is SrtpPolicy.OFF or not offer.crypto:
        raise SdesError("the answer has a=crypto but we offered none")
    if len(answered) != 1:
        raise SdesError(f"the answer has {len(answered)} a=crypto lines, expected one")
    remote = answered[0]
    ours = {a.tag: a for a in offer.crypto}
    local = ours.get(remote.tag)
    if local is None:
        raise SdesError(f"the answer's a=crypto tag {remote.tag} was not offered")
    if remote.suite != local.suite:
        raise SdesError(
            f"the answer's tag {remote.tag} is {remote.suite}, we offered {local.suite}"
        )
    reason = remote.unusable_reason()
    if reason is not None:
        raise SdesError(f"unusable a=crypto in the answer: {reason}")
    return SdesResult(local, remote)
