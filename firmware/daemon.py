"""``skillepunkt run``: the one asyncio process that is the appliance.

Opens the configuration store and the board, starts every service under the
supervisor, tells systemd when it is ready (and keeps its watchdog fed), and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from board import open_board

from .app import App, Ports
from .config import AdminAccount, ConfigStore, ConfigWatcher
from .events import EventBus
from .system.sdnotify import Notifier
from .system.supervisor import Backoff, Supervisor

log = logging.getLogger(__name__)

CONSOLE_PTY_FILE = "console.pty"


@dataclass(frozen=True)
class DaemonOptions:
    board: str
    data_dir: Path
    ports: Ports
    backoff: Backoff = field(default_factory=Backoff)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write-then-rename, so a reader never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def build(options: DaemonOptions) -> App:
    from .console import ConsoleService
    from .core.sip_service import SipService
    from .web import WebService

    data_dir = options.data_dir.resolve()
    store = ConfigStore.open(data_dir)
    board = open_board(options.board, data_dir)
    bus = EventBus()
    app = App(
        data_dir=data_dir,
        store=store,
        admin=AdminAccount(store),
        bus=bus,
        supervisor=Supervisor(options.backoff),
        board=board,
        ports=options.ports,
    )
    app.supervisor.add(ConfigWatcher(store, bus))
    for service in board.services():
        app.supervisor.add(service)
    app.supervisor.add(SipService(app))
    definition = getattr(board, "definition", None)
    if definition is not None and any(d.kind.value in ("fxs", "fxo") for d in definition.devices):
        from .core.analog_service import AnalogService

        app.supervisor.add(AnalogService(app))  # after "sip": it answers the SIP service's query
    app.supervisor.add(ConsoleService(app, board.console_device))
    app.supervisor.add(WebService(app))
    return app


async def _report(app: App, notifier: Notifier) -> None:
    """READY=1 once every service served once; STATUS= whenever the overall state changes."""
    await app.supervisor.all_ready.wait()
    # what the services built while starting (location service, dial plan, analog ports
    # and their DSP state...) lives as long as they do: freeze it too, so full
    # collections need not walk it again
    gc.collect()
    gc.freeze()
    notifier.notify(READY=1, STATUS=f"ready: {len(app.supervisor.names)} services running")
    log.info("ready", extra={"services": ",".join(app.supervisor.names)})
    last = "ok"
    while True:
        await asyncio.sleep(1.0)
        overall = app.supervisor.overall()
        if overall != last:
            bad = [s.name for s in app.supervisor.status() if s.state != "running"]
            notifier.notify(STATUS=f"{overall}" + (f": {', '.join(bad)}" if bad else ""))
            last = overall


async def serve(options: DaemonOptions) -> int:
    app = build(options)
    # The long-lived start-up objects never need collecting again; and the SIP hot path
    # allocates many short-lived containers, so the young generation may grow larger
    # before a collection (measured: the transaction layer runs ~2x faster without
    # frequent gen-0 collections).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    notifier = Notifier()
    console_file = app.data_dir / CONSOLE_PTY_FILE
    if app.board.console_peer:
        write_atomically(console_file, app.board.console_peer + "\n")
        print(f"serial console: {app.board.console_peer}", flush=True)
    print(
        f"web: http://{options.ports.host}:{options.ports.web}/  data: {app.data_dir}",
        flush=True,
    )
    log.info("starting", extra={"version": app.version, "board": app.board.name})
    notifier.notify(STATUS="starting")

    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(app.supervisor.run(), name="supervisor")
            tg.create_task(_report(app, notifier), name="sd-notify")
            tg.create_task(notifier.watchdog(), name="watchdog")
    except asyncio.CancelledError:
        log.info("stopping")
    finally:
        notifier.notify(STOPPING=1, STATUS="stopping")
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        app.board.close()
        app.store.close()
        notifier.close()
        with contextlib.suppress(FileNotFoundError):
            console_file.unlink()
    log.info("stopped")
    return 0


def run(options: DaemonOptions) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(options))
    return uvloop.run(serve(options))
