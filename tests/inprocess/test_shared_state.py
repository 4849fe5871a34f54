"""What the API processes of one server share: the generation counters (with real
processes), the single-flight renderings, the wake-ups, the browser sessions, and the
direct JSON of the hot renderings (the same bytes as json.dumps)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import threading
import time

from dioptra.dispatch.wakeup import WakeUp
from dioptra.generations import JOBS, QUEUES, Generations
from dioptra.restapi import fast_json, schemas
from dioptra.restapi.cache import Rendered
from dioptra.restapi.shared_sessions import FileSessions


def _bump_many(path, times: int) -> None:
    generations = Generations(path)
    for _ in range(times):
        generations.bump(QUEUES)


def test_bumps_from_several_processes_are_never_lost(tmp_path):
    mine = Generations.in_run_dir(tmp_path, create=True)
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_bump_many, args=(mine.path, 300)) for _ in range(3)]
    for proc in procs:
        proc.start()
    _bump_many(mine.path, 300)
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert mine.read(QUEUES) == 1200
    assert mine.read(JOBS) == 0  # the slots are apart


def test_a_new_server_starts_the_counters_afresh(tmp_path):
    Generations.in_run_dir(tmp_path, create=True).bump(QUEUES)
    assert Generations.in_run_dir(tmp_path).read(QUEUES) == 1
    assert Generations.in_run_dir(tmp_path, create=True).read(QUEUES) == 0


class Builds:
    """A build that waits to be released, counting its runs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.runs = 0

    def __call__(self) -> int:
        self.runs += 1
        run = self.runs
        assert self.release.wait(10)
        return run


def test_concurrent_requests_after_a_change_share_one_rebuild():
    generations, build = Generations(), Builds()
    rendered = Rendered(build, generations, QUEUES)

    async def scenario():
        waiting = [asyncio.ensure_future(rendered.get()) for _ in range(20)]
        await asyncio.sleep(0.2)
        build.release.set()
        first = await asyncio.gather(*waiting)
        rendered.invalidate()
        build.release.clear()
        waiting = [asyncio.ensure_future(rendered.get()) for _ in range(20)]
        await asyncio.sleep(0.2)
        build.release.set()
        return first, await asyncio.gather(*waiting)

    first, second = asyncio.run(scenario())
    assert first == [1] * 20 and second == [2] * 20
    assert build.runs == 2


def test_a_change_during_a_rebuild_is_not_served_from_that_rebuild():
    generations, build = Generations(), Builds()
    rendered = Rendered(build, generations, QUEUES)

    async def scenario():
        early = asyncio.ensure_future(rendered.get())
        await asyncio.sleep(0.2)
        rendered.invalidate()  # committed while the first build reads
        late = asyncio.ensure_future(rendered.get())
        await asyncio.sleep(0.2)
        build.release.set()
        return await early, await late, await rendered.get()

    early, late, after = asyncio.run(scenario())
    assert (early, late, after) == (1, 2, 2)


def test_an_expired_rendering_is_served_while_one_rebuild_runs():
    generations, build = Generations(), Builds()
    rendered = Rendered(build, generations, QUEUES, ttl_s=0.0)
    build.release.set()

    async def scenario():
        assert await rendered.get() == 1
        build.release.clear()
        await asyncio.sleep(0.01)  # past the TTL
        answers = [await rendered.get() for _ in range(10)]  # no waiting on the rebuild
        build.release.set()
        await asyncio.sleep(0.3)
        return answers, await rendered.get()

    answers, refreshed = asyncio.run(scenario())
    assert answers == [1] * 10
    assert refreshed == 2 and build.runs in (2, 3)  # one rebuild per expiry, not ten


def _notify_later(path) -> None:
    time.sleep(0.3)
    WakeUp(Generations(path)).notify()


def test_a_job_ready_in_another_process_wakes_the_waiters_here(tmp_path):
    generations = Generations.in_run_dir(tmp_path, create=True)
    wakeup = WakeUp(generations)

    async def scenario():
        wakeup.bind(asyncio.get_running_loop())
        event = wakeup.current()
        proc = multiprocessing.get_context("fork").Process(
            target=_notify_later, args=(generations.path,))
        proc.start()
        await WakeUp.wait(event, 30)
        await wakeup.unbind()
        proc.join(30)
        return event.is_set()

    assert asyncio.run(scenario())


def test_sessions_are_shared_and_a_logout_ends_one_everywhere(tmp_path):
    one, other = FileSessions(tmp_path / "s"), FileSessions(tmp_path / "s")
    sid = one.open()
    assert other.valid(sid) and not other.valid(sid + "x")
    other.close(sid)
    assert not one.valid(sid)
    expiring = FileSessions(tmp_path / "s", ttl_s=0.0)
    assert not expiring.valid(expiring.open())
    FileSessions.reset(tmp_path / "s")
    assert list((tmp_path / "s").iterdir()) == []


class _Queue:
    def __init__(self, queue_id, created_on, last_modified, name):
        self.queue_id, self.created_on = queue_id, created_on
        self.last_modified, self.name = last_modified, name


def test_the_direct_json_is_the_bytes_json_dumps_gives():
    stamp = dt.datetime(2024, 2, 29, 23, 59, 1, 7)
    whole = dt.datetime(2024, 3, 1, 0, 0, 0)  # no microseconds: isoformat still shows them
    names = ["cpu", 'a "quoted" name', "back\\slash", "naïve ünïcode ✓", "tab\tnew\nline",
             "emoji 🚀", "\x7f\x00"]
    for i, name in enumerate(names, 1):
        expected = json.dumps(schemas.queue(_Queue(i, stamp, whole, name)),
                              separators=(",", ":"))
        # The forms the database gives: datetimes (PostgreSQL), SQLite's text, or none.
        as_text = (i, str(stamp), str(whole), name)
        assert str(whole) == "2024-03-01 00:00:00"  # SQLite stores it with ".000000"
        sqlite_text = (i, stamp.isoformat(" ", "microseconds"),
                       whole.isoformat(" ", "microseconds"), name)
        for row in ((i, stamp, whole, name), as_text, sqlite_text):
            assert fast_json.queue(row) == expected, row
    assert fast_json.queue((1, None, None, "x")) == json.dumps(
        schemas.queue(_Queue(1, None, None, "x")), separators=(",", ":"))
    assert fast_json.array(["1", "2"]) == b"[1,2]" and fast_json.array([]) == b"[]"


def test_the_cached_renderings_answer_the_v0_shapes(bed):
    """The lists and the lookups served from the renderings, after each kind of change."""
    api = bed.api
    [experiment] = api.get("/api/v0/experiment/").json()
    assert experiment["name"] == "exp" and set(experiment) == {
        "experimentId", "createdOn", "lastModified", "name"}
    [cpu] = api.get("/api/v0/queue/").json()
    assert api.get(f"/api/v0/queue/{cpu['queueId']}").json() == cpu
    gpu = api.post("/api/v0/queue/", json={"name": "gpu"}).json()
    assert [q["name"] for q in api.get("/api/v0/queue/").json()] == ["cpu", "gpu"]
    assert api.put(f"/api/v0/queue/{gpu['queueId']}/lock").status_code == 200
    assert [q["name"] for q in api.get("/api/v0/queue/").json()] == ["cpu"]
    assert api.get(f"/api/v0/queue/{gpu['queueId']}").json() == gpu  # locked: still found
    assert api.delete(f"/api/v0/queue/{gpu['queueId']}").json()["id"] == [gpu["queueId"]]
    missing = api.get(f"/api/v0/queue/{gpu['queueId']}")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found - The requested queue does not exist"}
    assert api.get("/api/v0/queue/0").status_code == 404
    assert api.get(f"/api/v0/queue/{2**63}").status_code in (400, 404, 422)
