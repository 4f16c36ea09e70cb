"""An independent SIP phone for tests: PJSIP's pjsua2 in its own process, driven over stdin.

pjsua2's wheel allows 4 calls and 8 accounts per process, so each test phone is one
process. Commands are JSON lines on stdin, events JSON lines on stdout:

  {"cmd": "call", "uri": "sip:201@127.0.0.1:5060"}     {"cmd": "answer", "code": 200}
  {"cmd": "hangup"}  {"cmd": "hold"}  {"cmd": "unhold"}  {"cmd": "quit"}
  {"cmd": "play", "wav": "/tmp/tone.wav"}  {"cmd": "record", "wav": "/tmp/out.wav"}

Events: ready, reg_state, incoming, call_state, media, error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
from typing import Any

import pjsua2 as pj


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Call(pj.Call):  # type: ignore[misc]
    def __init__(
        self, phone: Phone, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID
    ) -> None:
        super().__init__(account, call_id)
        self.phone = phone

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        emit(
            "call_state",
            state=info.stateText,
            code=info.lastStatusCode,
            reason=info.lastReason,
            remote=info.remoteUri,
        )
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.call_ended(self)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        emit("dtmf", digit=prm.digit)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        emit("xfer_status", code=prm.statusCode, reason=prm.reason, final=prm.finalNotify)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                emit("media", index=i, status=int(media.status), dir=int(media.dir))
                if media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    self.phone.connect_audio(self.getAudioMedia(i))


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        info = self.getInfo()
        emit("reg_state", code=prm.code, reason=prm.reason, active=info.regIsActive)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = Call(self.phone, self, prm.callId)
        info = call.getInfo()
        emit("incoming", remote=info.remoteUri, local=info.localUri)
        self.phone.calls.append(call)
        if self.phone.auto_answer:
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)
        else:
            op = pj.CallOpParam()
            op.statusCode = 180
            call.answer(op)


class Phone:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.auto_answer = args.auto_answer
        self.calls: list[Call] = []
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.active_media: list[pj.AudioMedia] = []  # calls' audio, for a late play/record
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "pjsua2-test-phone"
        cfg.logConfig.level = args.log_level
        cfg.logConfig.consoleLevel = args.log_level
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        self.ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = args.port
        tcfg.boundAddress = "127.0.0.1"
        tcfg.publicAddress = "127.0.0.1"
        kind = {
            "udp": pj.PJSIP_TRANSPORT_UDP,
            "tcp": pj.PJSIP_TRANSPORT_TCP,
            "tls": pj.PJSIP_TRANSPORT_TLS,
        }[args.transport]
        if args.transport == "tls":
            tcfg.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
            tcfg.tlsConfig.verifyServer = False
        self.ep.transportCreate(kind, tcfg)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        wanted = [f"{c}/8000/1" for c in args.codecs.split(",")]
        for codec in self.ep.codecEnum2():
            priority = 255 - wanted.index(codec.codecId) if codec.codecId in wanted else 0
            self.ep.codecSetPriority(codec.codecId, priority)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{args.user}@{args.domain}"
        param = f";transport={args.transport}" if args.transport != "udp" else ""
        scheme = "sips" if args.transport == "tls" and args.sips else "sip"
        if args.register:
            acfg.regConfig.registrarUri = f"{scheme}:{args.domain}{param}"
            acfg.regConfig.timeoutSec = 300
        acfg.sipConfig.proxies.append(f"sip:{args.proxy}{param};lr") if args.proxy else None
        cred = pj.AuthCredInfo("digest", "*", args.user, 0, args.password)
        acfg.sipConfig.authCreds.append(cred)
        acfg.mediaConfig.srtpUse = (
            pj.PJMEDIA_SRTP_MANDATORY if args.srtp else pj.PJMEDIA_SRTP_DISABLED
        )
        acfg.mediaConfig.srtpSecureSignaling = 0  # SDES keys over UDP too (a lab, not a site)
        acfg.natConfig.sipOutboundUse = 0
        if args.require_100rel:
            acfg.callConfig.prackUse = pj.PJSUA_100REL_MANDATORY
        if args.session_expires:
            acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_ALWAYS
            acfg.callConfig.timerSessExpiresSec = args.session_expires
            acfg.callConfig.timerMinSESec = 90
        acfg.mediaConfig.transportConfig.port = args.rtp_port  # own range: phones run side by side
        acfg.mediaConfig.transportConfig.portRange = 20
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        self.account = Account(self)
        self.account.create(acfg)

    def connect_audio(self, media: pj.AudioMedia) -> None:
        self.active_media.append(media)
        self._connect(media)

    def _connect(self, media: pj.AudioMedia) -> None:
        if self.player is not None:
            self.player.startTransmit(media)
        if self.recorder is not None:
            media.startTransmit(self.recorder)

    def call_ended(self, call: Call) -> None:
        if call in self.calls:
            self.calls.remove(call)
        self.active_media.clear()

    def handle(self, command: dict[str, Any]) -> bool:
        cmd = command.get("cmd")
        if cmd == "quit":
            return False
        if cmd == "call":
            call = Call(self, self.account)
            op = pj.CallOpParam(True)
            call.makeCall(command["uri"], op)
            self.calls.append(call)
        elif cmd == "answer" and self.calls:
            op = pj.CallOpParam()
            op.statusCode = int(command.get("code", 200))
            self.calls[-1].answer(op)
        elif cmd == "hangup":
            index = command.get("index")
            for call in list(self.calls) if index is None else [self.calls[index]]:
                call.hangup(pj.CallOpParam())
        elif cmd == "dtmf" and self.calls:  # RFC 4733 events when negotiated
            self.calls[-1].dialDtmf(command["digits"])
        elif cmd == "xfer" and self.calls:  # blind transfer (REFER)
            self.calls[int(command.get("index", -1))].xfer(command["uri"], pj.CallOpParam())
        elif cmd == "xfer_replaces" and len(self.calls) > 1:  # attended transfer
            call, other = self.calls[int(command["index"])], self.calls[int(command["other"])]
            call.xferReplaces(other, pj.CallOpParam())
        elif cmd == "hold" and self.calls:
            self.calls[int(command.get("index", -1))].setHold(pj.CallOpParam())
        elif cmd == "unhold" and self.calls:
            op = pj.CallOpParam()
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            self.calls[-1].reinvite(op)
        elif cmd == "play":
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(command["wav"])
            for media in self.active_media:
                self.player.startTransmit(media)
        elif cmd == "record":
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(command["wav"])
            for media in self.active_media:
                media.startTransmit(self.recorder)
        else:
            emit("error", message=f"unknown or impossible command: {command}")
        return True

    def run(self) -> None:
        emit("ready", port=self.args.port)
        buffer = b""
        running = True
        while running:
            self.ep.libHandleEvents(10)
            readable, _, _ = select.select([sys.stdin], [], [], 0)
            if readable:
                chunk = os.read(sys.stdin.fileno(), 4096)
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        try:
                            running = self.handle(json.loads(line)) and running
                            emit("done", cmd=json.loads(line).get("cmd"))
                        except pj.Error as exc:
                            emit("error", message=exc.info())
        self.shutdown()

    def shutdown(self) -> None:
        for call in list(self.calls):
            with contextlib.suppress(pj.Error):
                call.hangup(pj.CallOpParam())
        for _ in range(20):
            self.ep.libHandleEvents(10)
        self.calls.clear()
        self.player = None
        if self.recorder is not None:
            self.recorder = None
        self.account.shutdown()
        self.ep.libDestroy()
        emit("stopped")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--domain", required=True, help="registrar host:port")
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
    p.add_argument("--sips", action="store_true")
    p.add_argument("--proxy", default="")
    p.add_argument("--register", action="store_true")
    p.add_argument("--auto-answer", action="store_true")
    p.add_argument("--srtp", action="store_true")
    p.add_argument("--rtp-port", type=int, default=4000)
    p.add_argument("--log-level", type=int, default=1)
    p.add_argument("--codecs", default="PCMA,PCMU", help="offered codecs, in order")
    p.add_argument("--require-100rel", action="store_true", help="PRACK mandatory (RFC 3262)")
    p.add_argument("--session-expires", type=int, default=0, help="always use session timers")
    Phone(p.parse_args()).run()


if __name__ == "__main__":
    main()
