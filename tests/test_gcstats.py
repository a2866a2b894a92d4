"""The cyclic collector's counters (chimevoice/gcstats.py) and the engine's promise that an
action is freed by reference counting when its call lets go of it: no reference cycle per
action (at 1000 calls there were 7,500 cyclic objects for every full collection)."""
from __future__ import annotations

import gc
import weakref

import structlog

from chimevoice.gcstats import GcStats


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_collections_collected_objects_and_pauses_are_counted_and_a_full_one_is_logged():
    stats = GcStats(log_pause_s=0.0, log_collected=1).install()
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(50):
                a, b = _Node(), _Node()
                a.other, b.other = b, a
            del a, b
            gc.collect()
        s = stats.stats()
    finally:
        stats.uninstall()
    assert s["python_gc_collections_gen2"] >= 1
    assert s["python_gc_collected_objects_gen2"] >= 100          # 50 cycles of two nodes
    assert s["python_gc_pause_seconds_gen2"] > 0 and s["python_gc_pause_max_seconds"] > 0
    full = [e for e in logs if e["event"] == "gc_full_collection"]
    assert full and full[-1]["collected"] >= 100
    gc.collect()
    assert stats.stats()["python_gc_collections_gen2"] == s["python_gc_collections_gen2"]   # uninstalled


def test_an_action_and_its_context_are_freed_without_the_cyclic_collector():
    from chimevoice.actions.control import Hangup
    from chimevoice.engine.action import ActionContext

    gc.disable()
    try:
        ctx = ActionContext(port=None)  # type: ignore[arg-type]
        action = Hangup(ctx, {"SipResponseCode": "0"})
        ctx.action = action
        assert ctx.action is action
        gone_action, gone_ctx = weakref.ref(action), weakref.ref(ctx)
        del action, ctx
        assert gone_action() is None and gone_ctx() is None
    finally:
        gc.enable()


def test_a_call_through_the_engine_leaves_no_cyclic_garbage():
    """NEW_INBOUND_CALL, PlayAudio to its end, then Hangup, with the collector off: once the
    transaction is dropped, reference counting has freed everything it made."""
    from chimevoice.engine import inputs as I
    from tests.test_engine import make_tx, play, respond, run_play_to_end

    gc.collect()
    gc.disable()
    try:
        tx = make_tx()
        tx.handle(I.InboundCallRouted())
        tx.drain()
        cmds = respond(tx, [play(), {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}])
        run_play_to_end(tx, cmds)
        del tx, cmds
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_recording_metadata_file_is_written_without_cyclic_garbage(tmp_path):
    """json.dump streams through the pure-Python encoder (closures in a cycle); the worker
    writes its JSON side files with json.dumps."""
    from chimevoice.media.worker import _write_json

    gc.collect()
    gc.disable()
    try:
        _write_json(tmp_path / "meta.json", {"CallId": "c1", "Track": "BOTH", "n": 1.5})
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert (tmp_path / "meta.json").read_text() == '{"CallId": "c1", "Track": "BOTH", "n": 1.5}'
