"""A committed import, from this process or another, is published as ConfigChanged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from firmware.config import ConfigChanged, ConfigStore, ConfigWatcher, dump_yaml
from firmware.events import EventBus


async def test_watcher_publishes_changed_sections(tmp_path: Path) -> None:
    store = ConfigStore.open(tmp_path)
    bus = EventBus()
    events = bus.queue(ConfigChanged)
    watcher = ConfigWatcher(store, bus, interval=0.02)
    ready = asyncio.Event()
    task = asyncio.create_task(watcher.run(ready.set))
    await ready.wait()

    store.import_raw({"users": [{"extension": "101", "name": "Anne"}]}, "test")
    event = await asyncio.wait_for(events.get(), 2)
    assert event == ConfigChanged(1, frozenset({"users"}))

    # an import by another process (the CLI beside a running daemon) is seen too
    doc = tmp_path / "doc.yaml"
    doc.write_text(
        dump_yaml(
            {"system": {"hostname": "reception"}, "users": [{"extension": "101", "name": "Anne"}]}
        )
    )
    await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "firmware.cli",
            "config",
            "import",
            str(doc),
            "--data",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    event = await asyncio.wait_for(events.get(), 5)
    assert event.revision == 2 and event.sections == frozenset({"system"})
    task.cancel()
    store.close()


async def test_import_while_the_watcher_is_down_is_still_published(tmp_path: Path) -> None:
    store = ConfigStore.open(tmp_path)
    bus = EventBus()
    events = bus.queue(ConfigChanged)
    watcher = ConfigWatcher(store, bus, interval=0.02)
    task = asyncio.create_task(watcher.run(lambda: None))
    await asyncio.sleep(0.05)
    task.cancel()  # the service crashed ...
    store.import_raw({"system": {"hostname": "meanwhile"}}, "test")
    task = asyncio.create_task(watcher.run(lambda: None))  # ... and was restarted
    event = await asyncio.wait_for(events.get(), 2)
    assert event == ConfigChanged(1, frozenset({"system"}))
    task.cancel()
    store.close()
