"""The ``skillepunkt`` command: run the daemon, manage configuration, reach the console, drive the sim.

Exit status: 0 success, 1 the request was refused (invalid configuration, daemon not
reachable, ...), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .app import Ports

DEFAULT_DATA = os.environ.get("SKILLEPUNKT_DATA", "./var")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skillepunkt", description="Skillepunkt telephony edge appliance"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # --data is accepted after the last word of every command that uses it
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="data directory")

    run = sub.add_parser("run", help="run the firmware in the foreground")
    run.add_argument("--board", default="sim", help="board to run on (default: sim)")
    run.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="data directory")
    run.add_argument("--host", default="127.0.0.1", help="address the services listen on")
    run.add_argument("--web-port", type=int, default=Ports.web)
    run.add_argument("--sip-port", type=int, default=Ports.sip)
    run.add_argument("--sip-tls-port", type=int, default=Ports.sip_tls)
    run.add_argument("--tftp-port", type=int, default=Ports.tftp)
    run.add_argument(
        "--rtp-ports",
        type=_port_range,
        default=(Ports.rtp_first, Ports.rtp_last),
        metavar="FIRST-LAST",
        help=f"media relay port range (default {Ports.rtp_first}-{Ports.rtp_last})",
    )
    run.add_argument("--log-level", default=os.environ.get("SKILLEPUNKT_LOG", "INFO"))

    cfg = sub.add_parser("config", help="validate, import or export the configuration (YAML)")
    csub = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    v = csub.add_parser("validate", help="check a YAML document; changes nothing")
    v.add_argument("file", help="YAML file, or - for standard input")
    i = csub.add_parser(
        "import", parents=[data], help="replace the whole configuration with a YAML document"
    )
    i.add_argument("file", help="YAML file, or - for standard input")
    e = csub.add_parser(
        "export", parents=[data], help="write the whole configuration as YAML (with secrets)"
    )
    e.add_argument("file", help="output file, or - for standard output")

    sub.add_parser(
        "console", parents=[data], help="attach this terminal to the sim board's serial console"
    )

    sim = sub.add_parser("sim", help="drive the virtual devices of a running sim board")
    ssub = sim.add_subparsers(dest="action", required=True, metavar="ACTION")
    ssub.add_parser(
        "status", parents=[data], help="the sim board, its devices and attached virtual devices"
    )
    f = ssub.add_parser(
        "fault", parents=[data], help="make a service crash (to watch it being restarted)"
    )
    f.add_argument("service")
    ph = ssub.add_parser("phone", parents=[data], help="work a virtual analog phone (fxsN)")
    ph.add_argument("name", help="the FXS port, e.g. fxs1")
    ph.add_argument("op", choices=["offhook", "onhook", "flash", "dial"])
    ph.add_argument("digits", nargs="?", help="for dial: the DTMF digits, e.g. 201")
    ln = ssub.add_parser("line", parents=[data], help="work a virtual PSTN line (fxoN)")
    ln.add_argument("name", help="the FXO port, e.g. fxo1")
    ln.add_argument("op", choices=["ring", "stop", "answer", "hangup"])
    ln.add_argument("--cli", help="for ring: the caller's number (caller ID)")
    ssub.add_parser("analog", parents=[data], help="the analog gateway's ports and calls")

    sub.add_parser("version", help="print the firmware version")
    return p


def _port_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(p) for p in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST, got {text!r}") from None
    if not 1024 <= first < last <= 65535 or last - first < 3:
        raise argparse.ArgumentTypeError(f"need 1024 <= FIRST < LAST <= 65535, got {text!r}")
    return first, last


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    return Path(file).read_bytes()


def _problems(exc: Any) -> int:
    print(
        f"configuration rejected ({len(exc.problems)} problem(s)); nothing changed:",
        file=sys.stderr,
    )
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def _config(args: argparse.Namespace) -> int:
    from .config import ConfigError, ConfigStore, dump_yaml, load_yaml, validate

    try:
        if args.action == "validate":
            doc = validate(load_yaml(_read(args.file)))
            counts = ", ".join(
                f"{len(getattr(doc, s))} {s}"
                for s in ("users", "trunks", "phones", "queues", "agents")
            )
            print(f"valid (schema version {doc.version}): {counts}")
            return 0
        with ConfigStore.open(args.data) as store:
            if args.action == "import":
                raw = load_yaml(_read(args.file))
                revision = store.import_raw(raw, source=f"cli:{args.file}")
                print(f"imported as revision {revision}")
                return 0
            text = dump_yaml(store.document())
    except ConfigError as exc:
        return _problems(exc)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.file == "-":
        sys.stdout.write(text)
    else:
        from .daemon import write_atomically

        write_atomically(Path(args.file), text, mode=0o600)  # it holds SIP passwords
        print(f"exported revision to {args.file}")
    return 0


def _sim(args: argparse.Namespace) -> int:
    from .localapi import LocalApiError, request

    try:
        if args.action == "status":
            result = request(args.data, "GET", "/api/v1/sim")
        elif args.action == "analog":
            result = request(args.data, "GET", "/api/v1/analog")
        elif args.action == "phone":
            if (args.op == "dial") != bool(args.digits):
                print("error: dial takes the digits, nothing else does", file=sys.stderr)
                return 2
            body = {"action": args.op, **({"digits": args.digits} if args.digits else {})}
            result = request(args.data, "POST", f"/api/v1/sim/phones/{args.name}", body)
        elif args.action == "line":
            if args.cli is not None and args.op != "ring":
                print("error: --cli goes with ring", file=sys.stderr)
                return 2
            body = {"action": args.op, **({"cli": args.cli} if args.cli else {})}
            result = request(args.data, "POST", f"/api/v1/sim/lines/{args.name}", body)
        else:
            result = request(args.data, "POST", "/api/v1/sim/faults", {"service": args.service})
    except LocalApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"skillepunkt {__version__}")
        return 0
    if args.command == "config":
        return _config(args)
    if args.command == "sim":
        return _sim(args)
    if args.command == "console":
        from .console.terminal import attach

        return attach(args.data)
    from .daemon import DaemonOptions, run
    from .system.logs import setup_logging

    setup_logging(args.log_level.upper())
    first, last = args.rtp_ports
    ports = Ports(
        args.host, args.web_port, args.sip_port, args.sip_tls_port, args.tftp_port, first, last
    )
    return run(DaemonOptions(board=args.board, data_dir=args.data, ports=ports))


if __name__ == "__main__":
    sys.exit(main())
