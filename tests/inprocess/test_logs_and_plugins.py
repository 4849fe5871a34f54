"""Job logs read from an offset, and plugin digests recorded once at upload."""

import hashlib

from sqlalchemy import event
from workflows import plugin_archive

from dioptra.services import plugins


def append(bed, job_id, worker, text):
    answer = bed.api.post(f"/api/v0/worker/jobs/{job_id}/log", content=text.encode(),
                          headers={"X-Dioptra-Worker-Id": worker})
    assert answer.status_code == 200, answer.text
    return answer.json()["size"]


def test_log_pages_from_any_offset(bed):
    job = bed.submit()["jobId"]
    bed.claim("w1", job)
    head = bed.log(job)
    pieces = ["één ", "twee\n", "", "drie ✓\n", "vier"]
    size = len(head)
    for piece in pieces:
        size = append(bed, job, "w1", piece) if piece else size
    whole = head + "".join(pieces)
    assert size == len(whole) and bed.log(job) == whole
    boundaries, at = [0], len(head)
    for piece in pieces:
        boundaries.append(at)
        at += len(piece)
    offsets = {max(0, b + d) for b in [*boundaries, len(whole)] for d in (-1, 0, 1, 2)}
    for offset in sorted(offsets):
        page = bed.api.get(f"/api/v0/job/{job}/log", params={"offset": offset}).json()
        assert page["log"] == whole[offset:], offset
        assert page["nextOffset"] == max(offset, len(whole))


def test_reading_from_an_offset_fetches_only_the_chunks_past_it(bed):
    """The offset is applied by the database, not by joining the whole log first."""
    job = bed.submit()["jobId"]
    bed.claim("w1", job)
    for i in range(50):
        append(bed, job, "w1", f"line {i:03d} " + "x" * 1000 + "\n")
    size = len(bed.log(job))
    fetched = []

    def spy(state):
        if "job_log_chunks" in str(state.statement):
            frozen = state.invoke_statement().freeze()
            fetched.extend(frozen().all())
            return frozen()
        return None

    sessions = bed.ctx.db._sessions
    event.listen(sessions, "do_orm_execute", spy)
    try:
        tail = bed.api.get(f"/api/v0/job/{job}/log", params={"offset": size - 5}).json()
    finally:
        event.remove(sessions, "do_orm_execute", spy)
    assert tail["log"] == "x" * 4 + "\n"
    assert len(fetched) == 1  # the last chunk, not all 50 and the notes before them


def test_plugin_digest_recorded_at_upload_and_handed_to_workers(bed, tmp_path):
    archive = plugin_archive(tmp_path, "mine")
    with archive.open("rb") as fh:
        answer = bed.api.post("/api/v0/taskPlugin/", files={"taskPluginFile": ("p.tgz", fh)},
                              data={"taskPluginName": "mine", "collection": "dioptra_custom"})
    assert answer.status_code == 200, answer.text
    packed = bed.ctx.store.get_bytes(plugins.packed_uri("mine"))
    with bed.ctx.db.session() as session:
        assert plugins.digests(session) == {"mine": hashlib.sha256(packed).hexdigest()}

    # A claim reads the recorded digest: the package is not read (nor hashed) again.
    reads = []
    real_get = bed.ctx.store.get_bytes
    bed.ctx.store.get_bytes = lambda uri: reads.append(uri) or real_get(uri)
    bed.submit()
    spec = bed.claim()
    assert spec["customPlugins"] == [{"name": "mine",
                                      "sha256": hashlib.sha256(packed).hexdigest()}]
    assert reads == []

    assert bed.api.delete("/api/v0/taskPlugin/dioptra_custom/mine").status_code == 200
    with bed.ctx.db.session() as session:
        assert plugins.digests(session) == {}


def test_packages_uploaded_before_digests_were_recorded_get_one_at_start(bed, tmp_path):
    plugins.upload(bed.ctx.store, "older", "dioptra_custom", plugin_archive(tmp_path, "older"))
    with bed.ctx.db.session() as session:
        assert plugins.digests(session) == {}
    assert plugins.record_missing_digests(bed.ctx) == ["older"]
    with bed.ctx.db.session() as session:
        assert list(plugins.digests(session)) == ["older"]
    assert plugins.record_missing_digests(bed.ctx) == []
