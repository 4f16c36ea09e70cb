"""The shared timer heap: order, lazy cancel, purge of stale entries."""

from __future__ import annotations

from firmware.sip.timers import TimerConfig, TimerQueue


class Owner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.timer_seq = [0, 0]


def test_fires_in_deadline_order_and_skips_cancelled() -> None:
    q: TimerQueue[Owner] = TimerQueue()
    a, b, c = Owner("a"), Owner("b"), Owner("c")
    q.arm(a, 0, 3.0)
    q.arm(b, 1, 1.0)
    q.arm(c, 0, 2.0)
    q.arm(a, 0, 0.5)  # restart: the 3.0 entry is stale now
    q.cancel(c, 0)
    assert q.next_deadline() == 0.5 and len(q) == 2
    fired: list[tuple[str, int]] = []
    q.pop_due(10.0, lambda owner, slot: fired.append((owner.name, slot)))
    assert fired == [("a", 0), ("b", 1)]
    assert q.next_deadline() is None and len(q) == 0


def test_purge_keeps_live_entries() -> None:
    q: TimerQueue[Owner] = TimerQueue()
    owners = [Owner(str(i)) for i in range(20_000)]
    for i, o in enumerate(owners):
        q.arm(o, 0, float(i))
        q.arm(o, 1, float(i) + 0.5)
    for o in owners[:15_000]:
        q.cancel_all(o)
    assert len(q) == 10_000
    assert len(q._heap) < 40_000  # purged along the way
    fired: list[Owner] = []
    q.pop_due(1e9, lambda owner, slot: fired.append(owner))
    assert len(fired) == 10_000 and {o.name for o in fired} == {
        str(i) for i in range(15_000, 20_000)
    }


def test_rearm_inside_a_callback_during_purge() -> None:
    q: TimerQueue[Owner] = TimerQueue()
    owners = [Owner(str(i)) for i in range(10_000)]
    for o in owners:
        q.arm(o, 0, 1.0)
    fired: list[Owner] = []

    def fire(owner: Owner, slot: int) -> None:
        fired.append(owner)
        for other in owners:  # cancelling from inside a callback triggers a purge
            q.cancel(other, 0)

    q.pop_due(2.0, fire)
    assert len(fired) == 1 and q.next_deadline() is None


def test_default_timer_values() -> None:
    config = TimerConfig()
    assert (config.t1, config.t2, config.t4, config.timer_d) == (0.5, 4.0, 5.0, 32.0)
    assert config.timeout == 32.0
    assert TimerConfig(t1=0.1).timeout == 6.4
