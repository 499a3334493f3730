"""Kept states, history, restore and rollback against a real GCS API (fake-gcs-server).

The story of the morning after a bad publish: state A is pushed, some files
change, state B is pushed; the history shows both, A can be pulled back byte
for byte anywhere, ``--delete`` after B keeps A's objects, and a rollback makes
a plain pull give A again. Races are produced for real: the server's
generation precondition rejects the later publish.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Unpack

import pytest
import requests

from extract.paths import MANIFEST
from extract.sync.gcs_states import History
from extract.sync.history import RollbackReport, apply_retention, history, rollback, select_prunable
from extract.sync.manifest import parse_manifest
from extract.sync.pull import pull
from extract.sync.push import PushReport, push, read_published
from extract.sync.remote import ConflictError, GcsRemote, SyncError
from extract.sync.source import load_manifest, source_for
from extract.sync.states import StateInfo, describe_state, document, publish_state, repo_commit
from tests.conftest import REPO
from tests.sync.helpers import FAST, Bucket, PushOptions, iqb, tree

OCT = "cache/v1/20241001T000000Z/20241101T000000Z"
SEP = "cache/v1/20240901T000000Z/20241001T000000Z"
CHANGED = f"{OCT}/downloads_by_country/stats.json"
ADDED = "cache/v1/20240801T000000Z/20240901T000000Z/uploads_by_country_asn"


def remote() -> GcsRemote:
    return GcsRemote.from_env(FAST)


def do_push(root: Path, **options: Unpack[PushOptions]) -> PushReport:
    # the demo cache is synthetic: published here labelled as such (--allow-synthetic)
    return push(root, remote(), jobs=4, allow_synthetic=True, **options)


def kept_state(report: PushReport) -> StateInfo:
    """The kept state a push published (every push of these tests publishes one)."""
    assert report.state is not None, report
    return report.state


def history_json() -> list[dict]:
    proc = iqb("sync", "history", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def objects_served(urls: list[str]) -> dict[str, str]:
    """sha256 of what each URL serves now (or its HTTP status)."""
    found = {}
    for url in urls:
        resp = requests.get(url, timeout=5)
        found[url] = hashlib.sha256(resp.content).hexdigest() if resp.ok else str(resp.status_code)
    return found


@pytest.fixture
def two_states(demo: Path, bucket: Bucket) -> tuple[PushReport, PushReport, dict[str, bytes]]:
    """State A (the demo cache), then B: one file changed, one dataset added, pushed."""
    a = do_push(demo)
    a_tree = tree(demo)
    (demo / CHANGED).write_text((demo / CHANGED).read_text().replace("{", '{"bad": 1,', 1))
    shutil.copytree(demo / SEP / "uploads_by_country_asn", demo / ADDED)
    b = do_push(demo)
    return a, b, a_tree


def test_history_lists_both_states_newest_first_with_commit_and_counts(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, b, a_tree = two_states
    assert (
        a.state and b.state and kept_state(a).id < kept_state(b).id
    )  # same second: B waited for a new id
    listed = history_json()
    assert [e["id"] for e in listed] == [kept_state(b).id, kept_state(a).id]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    for entry, files in ((listed[1], a_tree), (listed[0], tree(demo))):
        assert set(entry) >= {"id", "published_at", "commit", "files", "bytes", "manifest_url"}
        assert entry["commit"] == head
        assert entry["files"] == len(files)
        assert entry["bytes"] == sum(len(v) for v in files.values())
        assert (
            entry["manifest_url"]
            == f"{bucket.server}/{bucket.name}/state/manifests/{entry['id']}.json"
        )
        assert (
            datetime.fromisoformat(entry["published_at"]).strftime("%Y%m%dT%H%M%SZ") == entry["id"]
        )
    assert [e["current"] for e in listed] == [True, False]
    # The kept copy of B is the very bytes of the current manifest (and of the local copy).
    current = requests.get(bucket.manifest_http, timeout=5).content
    assert requests.get(listed[0]["manifest_url"], timeout=5).content == current
    assert (demo / MANIFEST).read_bytes() == current
    state = json.loads(current)["state"]
    assert (state["id"], state["previous"], state["rollback_of"]) == (
        kept_state(b).id,
        kept_state(a).id,
        None,
    )

    table = iqb("sync", "history")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    row_b = next(i for i, line in enumerate(lines) if kept_state(b).id in line)
    row_a = next(i for i, line in enumerate(lines) if kept_state(a).id in line)
    assert row_b < row_a and "current" in lines[row_b] and head[:12] in lines[row_a]


def test_history_says_when_the_current_manifest_was_edited_after_publishing(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    _, b, _ = two_states
    proc = iqb("sync", "history")
    assert proc.returncode == 0 and "not as it was published" not in proc.stderr, proc.stderr
    # someone with write access repoints a file and drops one, keeping the state block
    doc = json.loads(requests.get(bucket.manifest_http, timeout=5).content)
    files = doc["files"]
    files[CHANGED] = files[f"{SEP}/downloads_by_country/stats.json"]
    del files[f"{ADDED}/stats.json"]
    live = bucket.client.bucket(bucket.name).blob(MANIFEST)
    live.upload_from_string(json.dumps(doc), content_type="application/json")

    proc = iqb("sync", "history")
    assert proc.returncode == 0, proc.stderr
    assert f"not as it was published: it is not the kept copy of its state {kept_state(b).id}" in (
        proc.stderr
    )
    # rolling back to that very id republishes the kept copy: not "already current"
    proc = iqb("sync", "rollback", kept_state(b).id, "--artifacts", str(demo))
    assert proc.returncode == 0 and "already current" not in proc.stdout, proc.stdout
    republished = parse_manifest(requests.get(bucket.manifest_http, timeout=5).content, "live")
    assert republished.dumps() == History(remote()).read(kept_state(b).id).dumps()
    proc = iqb("sync", "history")
    assert "not as it was published" not in proc.stderr
    # the state block dropped: no state is current, and history says why
    del doc["state"]
    live.upload_from_string(json.dumps(doc), content_type="application/json")
    proc = iqb("sync", "history")
    assert "it names no published state (no `state` block)" in proc.stderr


def test_pull_of_an_older_state_gives_its_bytes(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    a, _, a_tree = two_states
    url = History(remote()).url(kept_state(a).id)
    elsewhere = tmp_path / "restore-a"
    proc = iqb("cache", "pull", url, "--allow-http", "--artifacts", str(elsewhere))
    assert proc.returncode == 0, proc.stderr
    assert tree(elsewhere) == a_tree
    assert tree(elsewhere) != tree(demo)  # B really is different
    # The gs:// form (a private bucket) reads the same kept manifest with the client.
    private = tmp_path / "restore-a-gs"
    proc = iqb(
        "cache",
        "pull",
        f"gs://{bucket.name}/{History.name(kept_state(a).id)}",
        "--artifacts",
        str(private),
    )
    assert proc.returncode == 0, proc.stderr
    assert tree(private) == a_tree


def test_a_reader_who_pulled_b_gets_a_after_the_rollback_but_keeps_local_work(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    a, _, a_tree = two_states
    reader = tmp_path / "reader"
    pull_args = ("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(reader))
    assert iqb(*pull_args).returncode == 0
    assert tree(reader) == tree(demo)  # B, with its added dataset
    # local work: one file of B edited here after the pull, and one never pulled
    edited = f"{SEP}/downloads_by_country/stats.json"
    (reader / edited).write_text((reader / edited).read_text().replace("{", '{"mine": 1,', 1))
    mine = reader / "cache/v1/20240701T000000Z/20240801T000000Z/uploads_by_country/stats.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")
    proc = iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr

    proc = iqb(*pull_args)  # no --force
    assert proc.returncode == 0, proc.stderr
    assert "removed 2 file(s) that an earlier pull of this manifest downloaded" in proc.stdout
    assert "kept 1 local file(s) that differ" in proc.stdout
    got = tree(reader)
    assert got[CHANGED] == a_tree[CHANGED]  # B's version replaced: the publisher undid it
    assert not (reader / ADDED).exists()  # B's dataset gone, with its folder
    assert b"mine" in got.pop(edited) and got.pop(mine.relative_to(reader).as_posix()) == b"{}"
    assert got == {k: v for k, v in a_tree.items() if k != edited}


def test_only_what_this_manifest_delivered_follows_it(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    """Files found current (the publisher's own), or delivered by another manifest (an
    old kept state's URL), are never replaced or removed by a later pull; nor is a
    withdrawn file that a writer changed while the pull ran."""
    a, b, _ = two_states
    # the publisher pulls its own bucket: everything is already here, nothing recorded
    args = ("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(demo))
    assert "downloaded 0 file(s)" in iqb(*args).stdout
    reader = tmp_path / "reader"
    old = History(remote()).url(kept_state(a).id)
    assert iqb("cache", "pull", old, "--allow-http", "--artifacts", str(reader)).returncode == 0
    assert iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo)).returncode == 0
    mine = tree(demo)
    proc = iqb(*args)
    assert proc.returncode == 0 and "removed" not in proc.stdout, proc.stdout
    assert tree(demo) == mine  # B's files, made here: kept (listed as differing)
    # the reader pulls the current manifest after A's kept URL: another origin
    reader_a = tree(reader)
    proc = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(reader))
    assert proc.returncode == 0 and "removed" not in proc.stdout
    assert tree(reader) == reader_a

    # a withdrawn file rewritten while the pull runs is kept
    forward = iqb("sync", "rollback", kept_state(b).id, "--artifacts", str(demo))
    assert forward.returncode == 0, forward.stderr
    follower = tmp_path / "follower"
    reader_src = source_for(bucket.manifest_http, FAST, allow_http=True)
    manifest = load_manifest(bucket.manifest_http, reader_src)
    assert pull(follower, manifest, reader_src, FAST, origin="here").downloaded
    assert iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo)).returncode == 0
    manifest = load_manifest(bucket.manifest_http, reader_src)
    victim = follower / ADDED / "data.parquet"

    def rewrite(_key: str) -> None:
        victim.write_bytes(b"rewritten meanwhile")

    got = pull(follower, manifest, reader_src, FAST, origin="here", on_done=rewrite)
    assert got.withdrawn == [f"{ADDED}/stats.json"]
    assert victim.read_bytes() == b"rewritten meanwhile"


def test_delete_after_b_keeps_the_objects_of_a(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    a, _, a_tree = two_states
    a_manifest = History(remote()).read(kept_state(a).id)
    proc = iqb("sync", "push", "--allow-synthetic", "--delete", "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert "deleted 0 object(s)" in proc.stdout  # without the kept A: its CHANGED would go
    assert a_manifest.files[CHANGED].url not in {
        r.url
        for r in parse_manifest(
            requests.get(bucket.manifest_http, timeout=5).content, "current"
        ).files.values()
    }
    served = objects_served([r.url for r in a_manifest.files.values()])
    assert served == {r.url: r.sha256 for r in a_manifest.files.values()}
    elsewhere = tmp_path / "restore-a"
    proc = iqb(
        "cache",
        "pull",
        History(remote()).url(kept_state(a).id),
        "--allow-http",
        "--artifacts",
        str(elsewhere),
    )
    assert proc.returncode == 0, proc.stderr
    assert tree(elsewhere) == a_tree


def test_rollback_makes_a_plain_pull_give_a_again(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    a, b, a_tree = two_states
    dry = iqb("sync", "rollback", kept_state(a).id, "--dry-run", "--artifacts", str(demo))
    assert dry.returncode == 0, dry.stderr
    assert "0 file(s) come back, 2 go, 1 change" in dry.stdout
    assert (
        json.loads(requests.get(bucket.manifest_http, timeout=5).content)["state"]["id"]
        == kept_state(b).id
    )

    proc = iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert f"rolled back gs://{bucket.name} to state {kept_state(a).id}" in proc.stdout
    fresh = tmp_path / "fresh"
    pulled = iqb("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(fresh))
    assert pulled.returncode == 0, pulled.stderr
    assert tree(fresh) == a_tree

    listed = history_json()
    assert len(listed) == 3
    newest = listed[0]
    assert newest["current"] and newest["rollback_of"] == kept_state(a).id
    assert newest["id"] > kept_state(b).id and newest["files"] == len(a_tree)
    state = json.loads(requests.get(bucket.manifest_http, timeout=5).content)["state"]
    assert state["previous"] == kept_state(b).id
    # Logged: a keep span and a publish span, both ok.
    logs = sorted((demo / "state" / "logs").glob("rollback-*.jsonl"))
    assert len(logs) == 1
    ops = [json.loads(line) for line in logs[0].read_text().splitlines()]
    # (one keep more when the rollback fell in the same second as B: its id was taken)
    assert [s["op"] for s in ops] in (["keep", "publish"], ["keep", "keep", "publish"])
    assert ops[-2]["ok"] and ops[-1]["ok"]
    # Rolling back to what is current already publishes nothing.
    generation = bucket.manifest_generation()
    again = iqb("sync", "rollback", newest["id"], "--artifacts", str(demo))
    assert again.returncode == 0 and "already current" in again.stdout
    assert bucket.manifest_generation() == generation
    # Rolling forward to B is just another rollback.
    forward = iqb("sync", "rollback", kept_state(b).id, "--artifacts", str(demo))
    assert forward.returncode == 0, forward.stderr
    other = tmp_path / "b-again"
    assert (
        iqb(
            "cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(other)
        ).returncode
        == 0
    )
    assert tree(other) == tree(demo)
    # A push on top of a rollback says so, and how to undo it.
    forward_id = history_json()[0]["id"]
    (demo / CHANGED).write_text("{}")
    pushed = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo))
    assert pushed.returncode == 0, pushed.stderr
    assert (
        f"this push replaced state {forward_id}, a rollback to {kept_state(b).id}; "
        f"`iqb sync rollback {forward_id}` puts it back"
    ) in pushed.stderr


class _RivalFirst(GcsRemote):
    """The real bucket, with another process's publish landing just before ours."""

    def __init__(self, rival: Callable[[], RollbackReport]) -> None:
        base = remote()
        super().__init__(base.bucket_name, None, FAST, client=base.client)
        self.rival = rival
        self.rival_done: RollbackReport | None = None

    def publish(self, data: bytes, generation: int) -> int:
        if self.rival_done is None:
            self.rival_done = self.rival()
        return super().publish(data, generation)


def test_two_concurrent_rollbacks_one_wins_the_other_gets_a_clear_error(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, b, _ = two_states
    root = demo
    # Bring a third state so that both rollbacks change something.
    (demo / CHANGED).write_text("{}")
    c = do_push(demo)
    assert c.state
    loser = _RivalFirst(lambda: rollback(remote(), kept_state(a).id, root))
    with pytest.raises(ConflictError, match="changed since this rollback read it"):
        rollback(loser, kept_state(b).id, root)
    assert loser.rival_done is not None
    winner = loser.rival_done.published
    assert winner is not None
    current = json.loads(requests.get(bucket.manifest_http, timeout=5).content)["state"]
    assert current["id"] == winner.info.id and current["rollback_of"] == kept_state(a).id
    # The loser's kept copy was removed again: the history holds only published states.
    listing = history(remote())
    assert [e.info.id for e in listing.entries] == [
        winner.info.id,
        kept_state(c).id,
        kept_state(b).id,
        kept_state(a).id,
    ]
    assert not listing.unpublished
    assert len(History(remote()).list()) == 4


def test_a_push_racing_a_rollback_fails_cleanly_and_reruns_on_top(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, _, _ = two_states
    (demo / CHANGED).write_text('{"fixed": true}')
    done: list[object] = []

    def meanwhile(_upload: object) -> None:
        if not done:
            done.append(rollback(remote(), kept_state(a).id, demo))

    with pytest.raises(ConflictError, match="changed since this push read it"):
        do_push(demo, on_upload=meanwhile)
    current = json.loads(requests.get(bucket.manifest_http, timeout=5).content)
    assert current["state"]["rollback_of"] == kept_state(a).id  # the rollback stands
    assert len(history(remote()).entries) == 3 and not history(remote()).unpublished
    again = do_push(demo)
    assert again.published and again.state
    assert (
        json.loads(requests.get(bucket.manifest_http, timeout=5).content)["files"][CHANGED][
            "sha256"
        ]
        == hashlib.sha256(b'{"fixed": true}').hexdigest()
    )


def test_truly_concurrent_rollbacks_never_both_publish(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    """Two threads released together: whatever the interleaving, no publish is lost silently."""
    a, b, _ = two_states
    (demo / CHANGED).write_text("{}")
    do_push(demo)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(target: str) -> None:
        start.wait()
        try:
            results[target] = rollback(remote(), target, demo)
        except ConflictError as exc:
            results[target] = exc

    threads = [
        threading.Thread(target=run, args=(sid,)) for sid in (kept_state(a).id, kept_state(b).id)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    published_now = [r for r in results.values() if not isinstance(r, ConflictError)]
    conflicts = [r for r in results.values() if isinstance(r, ConflictError)]
    assert len(results) == 2 and published_now
    listing = history(remote())
    # Every successful rollback is in the history, on the chain; a loser left nothing behind.
    assert len(listing.entries) == 3 + len(published_now) and not listing.unpublished
    assert len(conflicts) + len(published_now) == 2


def test_rollback_refuses_a_state_whose_objects_are_gone(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, _, _ = two_states
    a_manifest = History(remote()).read(kept_state(a).id)
    victim = a_manifest.files[CHANGED].url.split(f"/{bucket.name}/", 1)[1]
    bucket.client.bucket(bucket.name).blob(victim).delete()
    generation = bucket.manifest_generation()
    proc = iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo))
    assert proc.returncode == 1
    assert "names 1 object(s) that are no longer in" in proc.stderr
    assert f"{CHANGED} (deleted)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert bucket.manifest_generation() == generation


def test_rollback_refuses_a_state_whose_objects_were_overwritten(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    """Other bytes under the object's name: every reader's pull would fail its SHA-256."""
    a, _, _ = two_states
    a_manifest = History(remote()).read(kept_state(a).id)
    same_size = next(k for k in a_manifest.files if k != CHANGED and k.endswith(".parquet"))
    for key in (CHANGED, same_size):
        name = a_manifest.files[key].url.split(f"/{bucket.name}/", 1)[1]
        blob = bucket.client.bucket(bucket.name).get_blob(name)
        if key == CHANGED:  # the same size, and (as `gcloud storage cp` leaves it) no hash
            data = bytearray(blob.download_as_bytes())
            data[0] ^= 1
            time.sleep(1.1)  # written after the state was published, to the second
            bucket.client.bucket(bucket.name).blob(name).upload_from_string(bytes(data))
            continue
        # the same size, uploaded with the hash of its own bytes: only the hash tells
        data = bytearray(blob.download_as_bytes())
        data[-1] ^= 1
        blob.metadata = {**(blob.metadata or {}), "sha256": hashlib.sha256(data).hexdigest()}
        blob.upload_from_string(bytes(data))
    generation = bucket.manifest_generation()
    proc = iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo))
    assert proc.returncode == 1, proc.stderr
    assert "names 2 object(s) that are no longer in" in proc.stderr
    for key in (CHANGED, same_size):
        assert f"{key} (replaced: other bytes than the state names)" in proc.stderr
    assert bucket.manifest_generation() == generation


def test_rollback_bad_input_is_one_readable_error(demo: Path, bucket: Bucket) -> None:
    proc = iqb("sync", "rollback", "yesterday", "--artifacts", str(demo))
    assert proc.returncode == 2 and "'yesterday' is not a state id" in proc.stderr
    proc = iqb("sync", "rollback", "20241301T000000Z", "--artifacts", str(demo))
    assert proc.returncode == 2 and "not a valid UTC time" in proc.stderr
    proc = iqb("sync", "rollback", "20240101T000000Z", "--artifacts", str(demo))
    assert proc.returncode == 1 and "no kept state 20240101T000000Z" in proc.stderr
    for p in (proc,):
        assert "Traceback" not in p.stderr
    proc = iqb("sync", "history")
    assert proc.returncode == 0 and "no published states kept" in proc.stdout
    for args in (["history"], ["rollback", "20240101T000000Z"]):
        proc = iqb("sync", *args, env={"GCP_BUCKET": "no-such-bucket"})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "bucket gs://no-such-bucket does not exist" in proc.stderr
        proc = iqb("sync", *args, env={"GCP_BUCKET": "No Such"})
        assert (
            proc.returncode == 2
            and "GCP_BUCKET: 'No Such' is not a valid bucket name" in proc.stderr
        )


def test_history_reads_the_body_of_a_copy_without_metadata(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    """A copy re-uploaded by hand (custom metadata lost) still shows its facts."""
    a, b, _ = two_states
    blob = bucket.client.bucket(bucket.name).blob(History.name(kept_state(a).id))
    body = blob.download_as_bytes()
    blob.metadata = None
    blob.upload_from_string(body, content_type="application/json")
    kept = {k.id: k for k in History(remote()).list()}
    assert kept[kept_state(a).id].info is None and kept[kept_state(b).id].info is not None
    listed = history_json()
    assert [(e["id"], e["files"], e["bytes"]) for e in listed] == [
        (s.id, s.files, s.bytes) for s in (kept_state(b), kept_state(a))
    ]


def test_history_leaves_out_a_copy_whose_push_never_published(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    """A push killed between keeping its copy and publishing: the copy is off the chain."""
    _, b, _ = two_states
    current, _ = read_published(remote())
    info = describe_state(
        current,
        previous=kept_state(b).id,
        now=datetime.now(UTC) + timedelta(seconds=5),
    )
    assert History(remote()).keep(document(current, info.to_json()), info) is not None
    listing = history(remote())
    assert listing.entries[0].info.id == kept_state(b).id
    assert listing.unpublished == [info.id]
    proc = iqb("sync", "history")
    assert "never published (interrupted), not listed: " + info.id in proc.stderr
    # Create-only: the same id cannot be written twice.
    assert History(remote()).keep(b"{}", info) is None


def test_retention_prunes_old_states_then_the_objects_only_they_named(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, b, _ = two_states
    a_manifest = History(remote()).read(kept_state(a).id)
    (demo / CHANGED).write_text("{}")
    c = do_push(demo)
    # keep_last 2: A goes; B's objects stay although only B names its version of CHANGED.
    report = do_push(demo, delete=True, keep_days=0, keep_last=2)
    assert not report.published  # nothing changed since C: retention still applies
    assert report.pruned == [kept_state(a).id]
    assert [k.id for k in History(remote()).list()] == [kept_state(c).id, kept_state(b).id]
    b_manifest = History(remote()).read(kept_state(b).id)
    gone = {a_manifest.files[CHANGED].url}
    assert {o.url for o in report.garbage} == gone
    assert set(objects_served(sorted(gone)).values()) == {"404"}
    served = objects_served([r.url for r in b_manifest.files.values()])
    assert served == {r.url: r.sha256 for r in b_manifest.files.values()}
    # The default retention (30 days, last 10) keeps everything that is left.
    kept = apply_retention(
        remote(),
        current=kept_state(c).id,
        keep_days=30,
        keep_last=10,
        dry_run=True,
    )
    assert kept.pruned == []


def test_a_kept_copy_that_cannot_be_read_stops_delete(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, _, _ = two_states
    name = History.name(kept_state(a).id)
    blob = bucket.client.bucket(bucket.name).blob(name)
    blob.upload_from_string(b"not json")  # someone overwrote it by hand
    before = bucket.objects()
    with pytest.raises(
        SyncError,
        match=f"kept state {kept_state(a).id} cannot be read"
        r"(.|\n)*no object was deleted(.|\n)*not JSON",
    ):
        do_push(demo, delete=True)
    assert {k: v for k, v in bucket.objects().items() if k.startswith("objects/")} == {
        k: v for k, v in before.items() if k.startswith("objects/")
    }


def test_select_prunable_keeps_the_last_n_the_young_and_the_current() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    ids = [(now - timedelta(days=d)).strftime("%Y%m%dT%H%M%SZ") for d in range(0, 60, 2)]
    prunable = select_prunable(ids, now, keep_days=30, keep_last=10)
    assert prunable == ids[16:]  # days 32..58: older than 30 days and beyond the newest 10
    assert select_prunable(ids, now, keep_days=0, keep_last=20) == ids[20:]
    assert select_prunable(ids, now, keep_days=0, keep_last=1, protect={ids[-1]}) == ids[1:-1]
    assert select_prunable(ids[:5], now, keep_days=0, keep_last=10) == []


def test_commit_is_unknown_without_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert repo_commit() == head
    monkeypatch.setenv("PATH", str(tmp_path))  # no git to be found
    assert repo_commit() == "unknown"


def test_kept_manifest_still_parses_as_an_upstream_manifest(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    a, _, _ = two_states
    data = requests.get(History(remote()).url(kept_state(a).id), timeout=5).content
    doc = json.loads(data)
    assert doc["v"] == 0 and set(doc) == {"v", "files", "state"}
    manifest = parse_manifest(data, "kept")
    assert manifest.state == doc["state"]
    assert doc["state"]["files"] == len(manifest.files)


def test_publish_state_gives_each_state_its_own_id(demo: Path, bucket: Bucket) -> None:
    do_push(demo)
    current, generation = read_published(remote())
    store = History(remote())
    first = publish_state(remote(), current, generation, previous=None, store=store)
    second = publish_state(remote(), current, first.generation, previous=first.info.id, store=store)
    assert first.info.id < second.info.id


def test_a_garbage_current_manifest_can_still_be_listed_and_rolled_back(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    """The worst bad publish: state/manifest.json is not a manifest at all."""
    a, b, a_tree = two_states
    bucket.client.bucket(bucket.name).blob(MANIFEST).upload_from_string(b"<html>oops")
    proc = iqb("sync", "push", "--allow-synthetic", "--artifacts", str(demo))
    assert proc.returncode == 1 and "The published manifest is unusable" in proc.stderr
    listed = iqb("sync", "history", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "the current manifest is unusable" in listed.stderr
    assert [(e["id"], e["current"]) for e in json.loads(listed.stdout)] == [
        (kept_state(b).id, False),
        (kept_state(a).id, False),
    ]
    proc = iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert "is replaced whole" in proc.stderr
    fresh = tmp_path / "fresh"
    assert (
        iqb(
            "cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(fresh)
        ).returncode
        == 0
    )
    assert tree(fresh) == a_tree
    newest = history_json()[0]
    assert newest["current"] and newest["rollback_of"] == kept_state(a).id


def test_a_corrupt_pull_record_is_moved_aside_and_the_pull_fails_until_the_user_decides(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict], tmp_path: Path
) -> None:
    """Read as empty, a corrupt state/pulled.json would keep the rolled-back files with
    exit 0: the reader would go on seeing the undone state and never know."""
    a, _, a_tree = two_states
    assert a.state is not None
    reader = tmp_path / "reader"
    pull_args = ("cache", "pull", bucket.manifest_http, "--allow-http", "--artifacts", str(reader))
    assert iqb(*pull_args).returncode == 0
    record = reader / "state" / "pulled.json"
    record.write_text('{"origins": {"x": ')  # cut short by a full disk, say
    assert iqb("sync", "rollback", kept_state(a).id, "--artifacts", str(demo)).returncode == 0

    proc = iqb(*pull_args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [moved] = sorted((reader / "state").glob("pulled.json.corrupt-*"))
    assert moved.read_text() == '{"origins": {"x": '
    assert "could not be read; moved aside to" in proc.stderr and moved.name in proc.stderr
    assert "3 local file(s) could not be judged" in proc.stderr, proc.stderr
    for key in (CHANGED, f"{ADDED}/data.parquet", f"{ADDED}/stats.json"):
        assert key in proc.stderr
    assert "--accept-local" in proc.stderr and "Traceback" not in proc.stderr
    assert b"bad" in (reader / CHANGED).read_bytes()  # B's stale file: kept, not judged
    # a new record now exists, but the undecided files are still undecided
    assert record.is_file()
    again = iqb(*pull_args)
    assert again.returncode == 1 and "could not be judged" in again.stderr

    # the user decides: --force takes the manifest's bytes where it names the file
    proc = iqb(*pull_args, "--force")
    assert proc.returncode == 1 and "2 local file(s) could not be judged" in proc.stderr
    assert (reader / CHANGED).read_bytes() == a_tree[CHANGED]
    # and --accept-local keeps the rest as local work, ending the check
    proc = iqb(*pull_args, "--accept-local")
    assert proc.returncode == 0, proc.stderr
    assert not moved.exists() and (reader / ADDED / "stats.json").is_file()
    assert iqb(*pull_args).returncode == 0


def test_history_marks_a_state_record_that_disagrees_with_its_manifest(
    demo: Path, bucket: Bucket, two_states: tuple[PushReport, PushReport, dict]
) -> None:
    """A record is what the push wrote; anyone with write access can change it. History
    shows it checked against the files its kept manifest lists, never as written."""
    a, b, a_tree = two_states
    assert a.state is not None and b.state is not None
    assert all(e["record_disagrees"] is None for e in history_json())
    kept = bucket.client.bucket(bucket.name).get_blob(History.name(kept_state(a).id))
    assert kept is not None
    kept.metadata = {"iqb-files": "9999"}
    kept.patch()

    listed = {e["id"]: e for e in history_json()}
    assert listed[kept_state(a).id]["files"] == 9999
    problem = listed[kept_state(a).id]["record_disagrees"]
    assert f"record says 9999 files, the manifest lists {len(a_tree)}" in problem
    assert "metadata differs from the manifest's state block" in problem
    assert listed[kept_state(b).id]["record_disagrees"] is None
    table = iqb("sync", "history")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if kept_state(a).id in line)
    assert "9999 ✗" in row and "record disagrees" in row
    assert f"the record of state {kept_state(a).id} does not describe" in table.stderr
