"""FileStore: the conformance suite, the crate's file.rs tests (spec §2A.22, with its
bugs of §5.4/19 fixed), and the file format's own guarantees."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import os
from datetime import UTC, datetime
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from orra_di.errors import ConfigurationError, StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores import FileStore
from orra_di.stores import file as file_module
from orra_di.stores.file import decode_segment, encode_segment

from .conformance import DurableStoreConformance, StoreFactory, contents, join

pytestmark = pytest.mark.anyio


class TestFileStore(DurableStoreConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: FileStore(tmp_path / "sessions")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return (tmp_path / "sessions").as_uri()


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path)


def files(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


# -- the crate's tests ---------------------------------------------------------------------


async def test_save_and_load_roundtrip(store: FileStore) -> None:
    ns = Namespace("acme", "alice")
    session = Session(namespace=ns, messages=[Message.user("Hello"), Message.assistant("Hi!")])
    await store.save(session)
    loaded = await store.load(ns)
    assert loaded is not None
    assert loaded.namespace == ns
    assert loaded.messages == session.messages


async def test_load_nonexistent_returns_none(store: FileStore) -> None:
    assert await store.load(Namespace("nobody")) is None


async def test_correct_directory_structure(store: FileStore, tmp_path: Path) -> None:
    await store.save(Session(namespace=Namespace("company", "engineering", "alice")))
    assert (tmp_path / "company" / "engineering" / "alice.jsonl").is_file()
    assert store.path_for(Namespace.parse("company:engineering:alice")) == str(
        tmp_path / "company" / "engineering" / "alice.jsonl"
    )


async def test_no_leftover_tmp_files(store: FileStore, tmp_path: Path) -> None:
    ns = Namespace("test")
    await store.save(Session(namespace=ns, messages=[Message.user("a")]))
    await store.save(Session(namespace=ns, messages=[Message.user("b")]))
    await store.append(Namespace("new"), [Message.user("c")])
    assert files(tmp_path) == ["new.jsonl", "test.jsonl"]


async def test_delete_existing_session(store: FileStore, tmp_path: Path) -> None:
    ns = Namespace("acme", "alice")
    await store.save(Session(namespace=ns))
    assert await store.delete(ns) is True
    assert await store.load(ns) is None
    assert not (tmp_path / "acme" / "alice.jsonl").exists()


async def test_delete_nonexistent_returns_false(store: FileStore) -> None:
    assert await store.delete(Namespace("nobody")) is False


async def test_list_all_sessions(store: FileStore) -> None:
    for key in ("acme:alice", "acme:bob", "other:carol"):
        await store.save(Session(namespace=Namespace.parse(key)))
    assert [ns.key for ns in await store.list()] == ["acme:alice", "acme:bob", "other:carol"]


async def test_list_with_prefix(store: FileStore) -> None:
    for key in ("acme:alice", "acme:bob", "other:carol"):
        await store.save(Session(namespace=Namespace.parse(key)))
    listed = await store.list(Namespace("acme"))
    assert len(listed) == 2
    assert all(ns.key.startswith("acme:") for ns in listed)


async def test_list_empty_directory(store: FileStore) -> None:
    assert await store.list() == []


async def test_list_nonexistent_prefix(store: FileStore) -> None:
    await store.save(Session(namespace=Namespace("acme", "alice")))
    assert await store.list(Namespace("nope")) == []


async def test_list_missing_base_directory(tmp_path: Path) -> None:
    assert await FileStore(tmp_path / "not-yet").list() == []


async def test_deeply_nested_namespaces(store: FileStore, tmp_path: Path) -> None:
    ns = Namespace.parse("a:b:c:d:e")
    await store.save(Session(namespace=ns, messages=[Message.user("deep")]))
    assert (tmp_path / "a" / "b" / "c" / "d" / "e.jsonl").is_file()
    assert contents(await store.load(ns)) == ["deep"]
    assert await store.list(Namespace("a", "b")) == [ns]


async def test_overwrite_existing_session(store: FileStore) -> None:
    ns = Namespace("test")
    session = Session(namespace=ns, messages=[Message.user("one")])
    await store.save(session)
    session.push_message(Message.assistant("two"))
    await store.save(session)
    loaded = await store.load(ns)
    assert loaded is not None and loaded.message_count == 2


async def test_list_includes_sessions_at_prefix_level(store: FileStore) -> None:
    # orra 0.0.2 returned only acme:alice here (spec §5.4/19); the prefix's own session counts.
    await store.save(Session(namespace=Namespace("acme")))
    await store.save(Session(namespace=Namespace("acme", "alice")))
    assert [ns.key for ns in await store.list(Namespace("acme"))] == ["acme", "acme:alice"]


# -- file names: no escape, no collision ---------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "name"),
    [
        ("alice", "alice"),
        ("Team_42-b", "Team_42-b"),
        ("..", "%2E%2E"),
        ("v1.2", "v1%2E2"),
        ("a/b", "a%2Fb"),
        ("a\\b", "a%5Cb"),
        ("50%", "50%25"),
        ("x y~", "x%20y%7E"),
        ("é", "%C3%A9"),
        ("👩", "%F0%9F%91%A9"),
    ],
)
def test_segment_encoding(segment: str, name: str) -> None:
    assert encode_segment(segment) == name
    assert decode_segment(name) == segment


@pytest.mark.parametrize("name", ["a.b", "%2e", "%41", "%C3", "a%2", "", "x.jsonl"])
def test_names_the_store_never_writes_do_not_decode(name: str) -> None:
    assert decode_segment(name) is None


@pytest.mark.parametrize(
    "segments",
    [("..",), ("..", "..", "etc", "passwd"), ("a", ".."), ("/etc",), ("a/../../b",), (".",)],
)
async def test_namespaces_cannot_leave_the_base_directory(
    tmp_path: Path, segments: tuple[str, ...]
) -> None:
    base = tmp_path / "base"
    store = FileStore(base)
    ns = Namespace(*segments)
    await store.append(ns, [Message.user("inside")])
    async with store.lock(ns, timeout=1):
        pass
    inside = await anyio.Path(base).resolve()
    assert (await anyio.Path(store.path_for(ns)).resolve()).is_relative_to(inside)
    assert files(tmp_path) == [f"base/{name}" for name in files(base)]
    assert contents(await store.load(ns)) == ["inside"]
    assert await store.list() == [ns]
    assert await store.delete_tree(ns) == 1
    assert files(tmp_path) == []


async def test_dotted_versions_do_not_collide(store: FileStore) -> None:
    # orra 0.0.2 mapped both to v1.json (spec §5.4/19).
    await store.append(Namespace("app", "v1.1"), [Message.user("one-one")])
    await store.append(Namespace("app", "v1.2"), [Message.user("one-two")])
    await store.append(Namespace("app", "v1"), [Message.user("one")])
    assert contents(await store.load(Namespace("app", "v1.1"))) == ["one-one"]
    assert contents(await store.load(Namespace("app", "v1.2"))) == ["one-two"]
    assert contents(await store.load(Namespace("app", "v1"))) == ["one"]
    assert [ns.key for ns in await store.list()] == ["app:v1", "app:v1.1", "app:v1.2"]


async def test_foreign_files_are_not_sessions(store: FileStore, tmp_path: Path) -> None:
    await store.append(Namespace("acme", "alice"), [Message.user("x")])
    (tmp_path / "README.md").write_text("not a session")
    (tmp_path / "notes.v2.jsonl").write_text("{}\n")
    (tmp_path / "acme" / "a%3Ab.jsonl").write_text("{}\n")  # would decode to 'a:b'
    (tmp_path / "some.dir").mkdir()
    (tmp_path / "some.dir" / "x.jsonl").write_text("{}\n")
    assert await store.list() == [Namespace("acme", "alice")]


# -- the file format ----------------------------------------------------------------------


async def test_append_adds_lines_without_rewriting(store: FileStore) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user("1")])
    path = anyio.Path(store.path_for(ns))
    before = await path.read_bytes()
    inode = (await path.stat()).st_ino
    await store.append(ns, [Message.assistant("2")], metadata={"k": "v"})
    after = await path.read_bytes()
    assert after.startswith(before)
    assert (await path.stat()).st_ino == inode
    added = [json.loads(line) for line in after[len(before) :].splitlines()]
    assert added[0] == {"role": "assistant", "content": "2"}
    assert added[1]["metadata"] == {"k": "v"}
    assert set(added[1]) == {"updated_at", "metadata"}


async def test_header_describes_the_session(store: FileStore) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user("1")], metadata={"k": 1})
    header = json.loads((await anyio.Path(store.path_for(ns)).read_text()).splitlines()[0])
    assert header["orra_session"] == 1
    assert header["namespace"] == {"segments": ["acme", "alice"]}
    assert header["created_at"].endswith("+00:00")


async def test_torn_last_line_is_ignored_and_cut_by_the_next_append(store: FileStore) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user("1"), Message.assistant("2")])
    path = anyio.Path(store.path_for(ns))
    async with await anyio.open_file(path, "ab") as file:  # a crash in the middle of a line
        await file.write(b'{"role":"user","content":"lo')
    assert contents(await store.load(ns)) == ["1", "2"]
    await store.append(ns, [Message.user("3")])
    assert contents(await store.load(ns)) == ["1", "2", "3"]
    assert b'"lo' not in await path.read_bytes()


async def test_corrupt_line_names_file_and_line(store: FileStore) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user("1")])
    path = anyio.Path(store.path_for(ns))
    lines = (await path.read_text()).splitlines(keepends=True)
    await path.write_text(lines[0] + lines[1] + "{not json\n" + "".join(lines[2:]))
    with pytest.raises(StoreError, match=r"alice\.jsonl is corrupt at line 3"):
        await store.load(ns)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "line 1: the header line is missing"),
        (b'{"orra_session": 1, "namespace"', "line 1: the header line is missing"),
        (b"[]\n", "line 1: not a session header"),
        (b'{"orra_session": 2}\n', "line 1: format 2 is not 1"),
        (b'{"orra_session": 1, "namespace": {}}\n', "line 1: bad header"),
    ],
)
async def test_bad_headers_are_reported(
    store: FileStore, tmp_path: Path, body: bytes, error: str
) -> None:
    (tmp_path / "x.jsonl").write_bytes(body)
    with pytest.raises(StoreError, match=error):
        await store.load(Namespace("x"))


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"42", "line 2: not a JSON object"),
        (b'{"role": "wizard"}', "(?s)line 2: .*role"),
        (b'{"updated_at": "yesterday"}', "line 2: .*isoformat"),
        (b'{"updated_at": "2024-01-01T00:00:00+00:00", "metadata": []}', "line 2: metadata"),
        (b'{"something": "else"}', "line 2: neither a message nor an update"),
    ],
)
async def test_bad_records_are_reported(store: FileStore, line: bytes, error: str) -> None:
    ns = Namespace("x")
    await store.save(Session(namespace=ns))
    async with await anyio.open_file(store.path_for(ns), "ab") as file:
        await file.write(line + b"\n")
    with pytest.raises(StoreError, match=error):
        await store.load(ns)


async def test_a_file_holding_another_namespace_is_an_error(store: FileStore) -> None:
    # What a case-insensitive file system would do to "Alice" and "alice".
    await store.append(Namespace("Alice"), [Message.user("x")])
    os.rename(store.path_for(Namespace("Alice")), store.path_for(Namespace("alice")))
    with pytest.raises(StoreError, match="holds 'Alice', not 'alice'"):
        await store.load(Namespace("alice"))


async def test_metadata_must_be_json(store: FileStore) -> None:
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.append(Namespace("x"), [], metadata={"when": object()})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.save(Session(namespace=Namespace("x"), metadata={"nan": float("nan")}))
    assert await store.list() == []


async def test_os_errors_become_store_errors(store: FileStore, tmp_path: Path) -> None:
    (tmp_path / "acme").write_text("a file where a directory should be")
    with pytest.raises(StoreError, match=r"append to session 'acme:alice' failed on .*acme"):
        await store.append(Namespace("acme", "alice"), [Message.user("x")])
    with pytest.raises(StoreError, match="lock session 'acme:alice' failed"):
        async with store.lock(Namespace("acme", "alice")):
            pass


async def test_delete_tree_removes_directories_and_lock_files(
    store: FileStore, tmp_path: Path
) -> None:
    for key in ("acme", "acme:alice", "acme:alice:x", "acmeother"):
        ns = Namespace.parse(key)
        await store.append(ns, [Message.user(key)])
        async with store.lock(ns):
            pass
    assert await store.delete_tree(Namespace("acme")) == 3
    assert files(tmp_path) == ["acmeother.jsonl", "acmeother.lock", "acmeother.queue"]


# -- the load cache -------------------------------------------------------------------------


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files parsed from now on (a cached load parses none)."""
    parsed: list[str] = []
    parse = file_module._parse

    def counting(data: bytes, namespace: Namespace, path: str) -> Session:
        parsed.append(path)
        return parse(data, namespace, path)

    monkeypatch.setattr(file_module, "_parse", counting)
    return parsed


async def test_loads_of_an_unchanged_session_do_not_parse(
    store: FileStore, tmp_path: Path, parses: list[str]
) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user("1")], metadata={"k": (1, 2)})  # created: cached
    await store.append(ns, [Message.assistant("2")])  # appended: the cached copy follows
    for _ in range(3):
        loaded = await store.load(ns)
        assert contents(loaded) == ["1", "2"]
        assert loaded is not None and loaded.metadata == {"k": [1, 2]}  # as JSON has it
    assert parses == []
    loaded.messages.clear()  # a copy: the next load is whole again
    loaded.metadata["k"].append(3)
    assert contents(await store.load(ns)) == ["1", "2"]
    assert (await store.load(ns)) == (await FileStore(tmp_path).load(ns))
    assert len(parses) == 1  # only the fresh store object's load
    await store.save(Session(namespace=ns, messages=[Message.user("saved")]))
    await store.trim(ns, 1)
    assert contents(await store.load(ns)) == ["saved"]
    assert len(parses) == 2  # the trim's own read; its result is cached


async def test_a_second_store_objects_append_is_seen(tmp_path: Path, parses: list[str]) -> None:
    mine, theirs = FileStore(tmp_path), FileStore(tmp_path)
    ns = Namespace("acme", "alice")
    await mine.append(ns, [Message.user("1")])
    assert contents(await mine.load(ns)) == ["1"]
    await theirs.append(ns, [Message.user("2")])
    await mine.append(ns, [Message.user("3")])  # the file was not at mine's cached version
    assert contents(await mine.load(ns)) == ["1", "2", "3"]
    assert contents(await mine.load(ns)) == ["1", "2", "3"]
    assert len(parses) == 1  # the load after the other's append; the next one is cached


async def test_a_rewrite_with_the_same_inode_size_and_mtime_is_seen(
    tmp_path: Path, parses: list[str]
) -> None:
    # What a rewrite elsewhere that gets the freed inode number back would look like,
    # within one tick of the file system's clock: only the header's file_id differs.
    mine, theirs = FileStore(tmp_path), FileStore(tmp_path)
    ns = Namespace("acme", "alice")
    when = datetime(2024, 1, 1, tzinfo=UTC)
    await mine.save(Session(namespace=ns, messages=[Message.user("mine")], updated_at=when))
    assert contents(await mine.load(ns)) == ["mine"]
    path = mine.path_for(ns)
    before = os.stat(path)
    os.link(path, f"{path}.kept")
    await theirs.save(Session(namespace=ns, messages=[Message.user("ours")], updated_at=when))
    rewritten = await anyio.Path(path).read_bytes()
    async with await anyio.open_file(f"{path}.kept", "r+b") as file:  # the first inode
        await file.write(rewritten)  # written over in place
    assert len(rewritten) == before.st_size
    os.utime(f"{path}.kept", ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(f"{path}.kept", path)
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert contents(await mine.load(ns)) == ["ours"]
    assert parses == [path]


async def test_each_file_written_whole_gets_its_own_id(store: FileStore) -> None:
    ns = Namespace("acme", "alice")

    async def file_id() -> str:
        header = (await anyio.Path(store.path_for(ns)).read_text()).splitlines()[0]
        value = json.loads(header)["file_id"]
        assert isinstance(value, str) and header.index(value) + len(value) < file_module._HEAD
        return value

    await store.append(ns, [Message.user("1")])
    created = await file_id()
    await store.append(ns, [Message.user("2")])
    assert await file_id() == created  # an append keeps the file
    await store.save(Session(namespace=ns, messages=[Message.user("1")]))
    saved = await file_id()
    await store.trim(ns, 0)
    assert len({created, saved, await file_id()}) == 3


async def test_a_file_without_file_id_loads_and_is_cached(
    store: FileStore, tmp_path: Path, parses: list[str]
) -> None:
    header = {
        "orra_session": 1,
        "namespace": {"segments": ["old"]},
        "created_at": "2024-01-01T00:00:00.000000+00:00",
        "updated_at": "2024-01-01T00:00:00.000000+00:00",
        "metadata": {},
    }
    (tmp_path / "old.jsonl").write_text(json.dumps(header) + "\n")
    await store.append(Namespace("old"), [Message.user("new")])
    for _ in range(2):
        assert contents(await store.load(Namespace("old"))) == ["new"]
    assert len(parses) == 1


async def test_a_line_being_written_is_not_cached(
    store: FileStore, tmp_path: Path, parses: list[str]
) -> None:
    ns = Namespace("x")
    await store.append(ns, [Message.user("1")])
    path = anyio.Path(store.path_for(ns))
    async with await anyio.open_file(path, "ab") as file:  # half of another's line, so far
        await file.write(b'{"role":"user","content":"2"')
        await file.flush()
        assert contents(await store.load(ns)) == ["1"]
        assert contents(await store.load(ns)) == ["1"]
        assert len(parses) == 2
        await file.write(b"}\n")
    assert contents(await store.load(ns)) == ["1", "2"]


async def test_unlocked_appends_and_trims_from_two_store_objects(tmp_path: Path) -> None:
    # Trims hold the file's flock: an append cannot land between a trim's read and its
    # rename, so what is kept is always the newest messages, with no gap.
    writer, cleaner = FileStore(tmp_path), FileStore(tmp_path)
    ns = Namespace("acme", "alice")
    count = 300

    async def append_all() -> None:
        for n in range(count):
            await writer.append(ns, [Message.user(str(n))])

    async def trim_repeatedly() -> None:
        while True:
            await cleaner.trim(ns, 5)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(trim_repeatedly)
        await append_all()
        tg.cancel_scope.cancel()
    for reader in (writer, cleaner, FileStore(tmp_path)):
        kept = [int(text) for text in contents(await reader.load(ns))]
        assert kept == list(range(count - len(kept), count)), kept


async def test_concurrent_appends_of_one_process_without_the_lock(tmp_path: Path) -> None:
    stores = [FileStore(tmp_path), FileStore(tmp_path)]
    ns = Namespace("acme", "alice")

    async def append_some(worker: int) -> None:
        for n in range(20):
            await stores[worker % 2].append(ns, [Message.user(f"w{worker}-{n}")])

    async with anyio.create_task_group() as tg:
        for worker in range(8):
            tg.start_soon(append_some, worker)
    expected = sorted(f"w{w}-{n}" for w in range(8) for n in range(20))
    for reader in (*stores, FileStore(tmp_path)):
        assert sorted(contents(await reader.load(ns))) == expected


# -- retention ----------------------------------------------------------------------------


async def test_trim_replaces_the_file_whole(store: FileStore, tmp_path: Path) -> None:
    ns = Namespace("acme", "alice")
    await store.append(ns, [Message.user(str(i)) for i in range(5)], metadata={"k": 1})
    path = anyio.Path(store.path_for(ns))
    inode = (await path.stat()).st_ino
    assert await store.trim(ns, 2) == 3
    assert (await path.stat()).st_ino != inode  # renamed into place, never edited in place
    lines = (await path.read_text()).splitlines()
    assert len(lines) == 3  # the header, then the kept messages
    assert json.loads(lines[0])["metadata"] == {"k": 1}
    assert files(tmp_path) == ["acme/alice.jsonl", "acme/alice.lock", "acme/alice.queue"]


async def test_trim_waits_for_the_run_holding_the_session(tmp_path: Path) -> None:
    ns = Namespace("acme", "alice")
    runner, cleaner = FileStore(tmp_path), FileStore(tmp_path)  # as two processes would
    await runner.append(ns, [Message.user("old")])
    held = anyio.Event()

    async def run() -> None:
        async with runner.lock(ns):
            held.set()
            await anyio.sleep(0.1)
            await runner.append(ns, [Message.user("question"), Message.assistant("answer")])

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await held.wait()
        assert await cleaner.trim(ns, 2) == 1  # after the run: its messages are not lost
    assert contents(await cleaner.load(ns)) == ["question", "answer"]


async def test_prune_spares_held_sessions_and_removes_lock_files(
    store: FileStore, tmp_path: Path
) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    busy, idle = Namespace("busy"), Namespace("a", "idle")
    for ns in (busy, idle):
        await store.save(Session(namespace=ns, messages=[Message.user("x")], updated_at=old))
        async with store.lock(ns):
            pass
    async with FileStore(tmp_path).lock(busy):  # a run in another process
        assert await store.prune(3600) == 1
    # The directory "a" stays, empty.
    assert files(tmp_path) == ["busy.jsonl", "busy.lock", "busy.queue"]
    assert await store.prune(3600) == 1
    assert files(tmp_path) == []


async def test_prune_reads_the_last_complete_line(store: FileStore) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    saved, appended = Namespace("saved"), Namespace("appended")
    for ns in (saved, appended):
        await store.save(Session(namespace=ns, messages=[Message.user("x")], updated_at=old))
    await store.append(appended, [Message.user("y")])  # the header still says 2020
    for ns in (saved, appended):  # a crash in the middle of a line, left for the next append
        async with await anyio.open_file(store.path_for(ns), "ab") as file:
            await file.write(b'{"updated_at": "2099-01-01T00:00:00+00:0')
    assert await store.prune(3600) == 1
    assert await store.list() == [appended]


async def test_prune_reports_a_corrupt_file(store: FileStore, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_bytes(b'{"orra_session": 1}\n')
    with pytest.raises(StoreError, match=r"x\.jsonl is corrupt: no time of last update"):
        await store.prune(3600)


# -- several processes, one session ---------------------------------------------------------


def append_without_the_lock(
    base: str, key: str, worker: int, count: int, start: multiprocessing.synchronize.Barrier
) -> None:
    """Append ``count`` messages ``w<worker>-<n>`` (each some pages long) one by one, unlocked."""
    padding = " " + "x" * 12_000  # a write of several pages: a reader can see it half done

    async def main() -> None:
        store = FileStore(base)
        ns = Namespace.parse(key)
        await anyio.to_thread.run_sync(start.wait)
        for n in range(count):
            await store.append(ns, [Message.user(f"w{worker}-{n}{padding}")])

    anyio.run(main)


async def test_processes_appending_to_one_session_without_the_lock_lose_nothing(
    tmp_path: Path,
) -> None:
    # Each append used to check for a torn last line and cut it off, unlocked: a line
    # another process was still writing looked torn, and was cut once it was written.
    ns = Namespace("acme", "shared")
    await FileStore(tmp_path).append(ns, [Message.user("first")])
    count, appends = 6, 250
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(count)
    processes = [
        spawn.Process(
            target=append_without_the_lock, args=(str(tmp_path), ns.key, w, appends, start)
        )
        for w in range(count)
    ]
    for process in processes:
        process.start()
    try:
        assert [await join(p) for p in processes] == [0] * count
    finally:
        for process in processes:
            process.kill()
    loaded = await FileStore(tmp_path).load(ns)
    assert loaded is not None
    tags = [m.content.split(" ", 1)[0] for m in loaded.messages]
    assert tags[0] == "first"
    expected = [f"w{w}-{n}" for w in range(count) for n in range(appends)]
    lost = set(expected) - set(tags)
    assert not lost, f"{len(lost)} of {len(expected)} messages lost"
    assert sorted(tags[1:]) == sorted(expected)  # and none twice
    for w in range(count):  # each process's in the order it appended them
        assert [t for t in tags if t.startswith(f"w{w}-")] == [f"w{w}-{n}" for n in range(appends)]


# -- no OSError gets out -------------------------------------------------------------------


async def every_operation(store: FileStore) -> list[str]:
    """Run each store operation; the ``StoreError`` messages they raise (and none else)."""
    ns = Namespace("acme", "alice")
    operations = [
        lambda: store.load(ns),
        lambda: store.save(Session(namespace=ns, messages=[Message.user("x")])),
        lambda: store.append(ns, [Message.user("x")]),
        lambda: store.delete(ns),
        lambda: store.delete_tree(Namespace("acme")),
        lambda: store.list(),
        lambda: store.list(Namespace("acme")),
        lambda: store.trim(ns, 1),
        lambda: store.prune(0),
    ]
    messages = []
    for operation in operations:
        with pytest.raises(StoreError) as caught:
            await operation()
        messages.append(str(caught.value))
    with pytest.raises(StoreError) as caught:
        async with store.lock(ns, timeout=0):
            pass
    return [*messages, str(caught.value)]


async def test_a_file_where_the_base_directory_should_be_is_a_store_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "taken").write_text("not a directory")
    messages = await every_operation(FileStore(tmp_path / "taken" / "sessions"))
    for message in messages:
        assert str(tmp_path / "taken") in message
        assert "a file stands where the store needs a directory" in message, message


async def test_a_file_where_a_namespace_directory_should_be_is_a_store_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "acme").write_text("not a directory")
    store = FileStore(tmp_path)
    with pytest.raises(StoreError, match="a file stands where the store needs a directory"):
        await store.append(Namespace("acme", "alice"), [Message.user("x")])
    with pytest.raises(StoreError, match="a file stands where"):
        async with store.lock(Namespace("acme", "alice")):
            pass
    with pytest.raises(StoreError, match="a file stands where"):
        await store.load(Namespace("acme", "alice"))
    assert (tmp_path / "acme").read_text() == "not a directory"  # nothing lost


async def test_a_read_only_directory_is_a_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only directories")
    store = FileStore(tmp_path)
    await store.append(Namespace("acme", "alice"), [Message.user("kept")])
    (tmp_path / "acme").chmod(0o500)
    try:
        with pytest.raises(StoreError, match="check that this process may read and write"):
            await store.save(Session(namespace=Namespace("acme", "alice")))
        with pytest.raises(StoreError, match="check that this process may read and write"):
            await store.append(Namespace("acme", "bob"), [Message.user("x")])
    finally:
        (tmp_path / "acme").chmod(0o700)
    assert contents(await store.load(Namespace("acme", "alice"))) == ["kept"]


def test_long_keys_are_stored_under_digests_with_the_key_inside(tmp_path: Path) -> None:
    """Existing names stay as they were; only names that would not fit change."""
    store = FileStore(tmp_path)
    assert store.path_for(Namespace("acme", "alice")) == str(tmp_path / "acme" / "alice.jsonl")
    fits = "é" * 40  # 240 bytes encoded: a file name with room for its temporary's suffix
    assert store.path_for(Namespace(fits)) == str(tmp_path / (encode_segment(fits) + ".jsonl"))
    long = Namespace("acme", "é" * 43, "bob")
    path = Path(store.path_for(long))
    assert path.parent.parent == tmp_path / "acme"
    assert path.parent.name.startswith("~") and path.name == "bob.jsonl"
    deep = Namespace(*["😀"] * 500)
    assert len(store.path_for(deep).encode()) < 4096 - len(".01234567.tmp")


def test_a_file_for_the_sessions_directory_is_refused_at_once(tmp_path: Path) -> None:
    taken = tmp_path / "sessions"
    taken.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="is a file; give a directory"):
        FileStore(taken)
