import os
import threading

import pytest

from chimevoice.media.storage import BucketStore, ObjectAccessError, atomic_writer


@pytest.fixture
def store(tmp_path):
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "hello.wav").write_bytes(b"RIFF")
    (tmp_path / "b1" / "sub").mkdir()
    (tmp_path / "b1" / "sub" / "x.wav").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("top secret")
    return BucketStore({"b1": tmp_path / "b1", "b2": tmp_path / "not-yet"})


def test_resolve_existing_objects(store, tmp_path):
    assert store.resolve("b1", "hello.wav") == tmp_path / "b1" / "hello.wav"
    assert store.resolve("b1", "sub/x.wav") == tmp_path / "b1" / "sub" / "x.wav"


def test_unknown_bucket(store):
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("nope", "hello.wav")
    assert ei.value.reason == "no_such_bucket"


def test_missing_object_and_bucket_dir(store):
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", "missing.wav")
    assert ei.value.reason == "no_such_key"
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b2", "hello.wav")  # bucket directory does not exist yet
    assert ei.value.reason == "no_such_key"


@pytest.mark.parametrize(
    "key",
    [
        "../secret.txt",
        "sub/../../secret.txt",
        "/etc/passwd",
        "./hello.wav",
        "sub//x.wav",
        "",
        "sub\\..\\..\\secret.txt",
        "hello.wav\x00",
        "..",
    ],
)
def test_path_traversal_refused(store, key):
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", key)
    assert ei.value.reason == "invalid_key"


def test_symlink_out_of_bucket_refused(store, tmp_path):
    os.symlink(tmp_path / "secret.txt", tmp_path / "b1" / "link.wav")
    os.symlink(tmp_path, tmp_path / "b1" / "up")
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", "link.wav")
    assert ei.value.reason == "invalid_key"
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", "up/secret.txt")
    assert ei.value.reason == "invalid_key"
    with pytest.raises(ObjectAccessError):
        store.put_atomic("b1", "up/evil.txt", b"x")
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_inside_bucket_allowed(store, tmp_path):
    os.symlink(tmp_path / "b1" / "hello.wav", tmp_path / "b1" / "alias.wav")
    assert store.resolve("b1", "alias.wav") == tmp_path / "b1" / "alias.wav"


def test_directory_is_not_an_object(store):
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", "sub")
    assert ei.value.reason == "not_a_file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_object(store, tmp_path):
    p = tmp_path / "b1" / "hello.wav"
    p.chmod(0)
    try:
        with pytest.raises(ObjectAccessError) as ei:
            store.resolve("b1", "hello.wav")
        assert ei.value.reason == "not_readable"
    finally:
        p.chmod(0o644)


def test_unreadable_object_via_fifo(store, tmp_path):
    # Works as root too: a FIFO exists but is not a regular file we could read.
    os.mkfifo(tmp_path / "b1" / "fifo.wav")
    with pytest.raises(ObjectAccessError) as ei:
        store.resolve("b1", "fifo.wav")
    assert ei.value.reason == "not_a_file"


def test_put_atomic_creates_bucket_and_dirs(store, tmp_path):
    p = store.put_atomic("b2", "rec/2024/a.wav", b"hello")
    assert p == tmp_path / "not-yet" / "rec" / "2024" / "a.wav"
    assert p.read_bytes() == b"hello"
    assert store.resolve("b2", "rec/2024/a.wav") == p
    # overwrite
    store.put_atomic("b2", "rec/2024/a.wav", b"second")
    assert p.read_bytes() == b"second"
    assert sorted(os.listdir(p.parent)) == ["a.wav"]  # no temp files left


def test_put_atomic_refuses_traversal(store, tmp_path):
    with pytest.raises(ObjectAccessError):
        store.put_atomic("b1", "../escaped.wav", b"x")
    assert not (tmp_path / "escaped.wav").exists()


def test_open_atomic_writer_visible_only_after_close(store, tmp_path):
    target = tmp_path / "b1" / "stream.bin"
    with store.open_atomic_writer("b1", "stream.bin") as fh:
        fh.write(b"part1")
        assert not target.exists()
        fh.write(b"part2")
    assert target.read_bytes() == b"part1part2"
    assert sorted(p.name for p in (tmp_path / "b1").iterdir()) == ["hello.wav", "stream.bin", "sub"]


def test_open_atomic_writer_error_keeps_old_and_cleans_up(store, tmp_path):
    target = tmp_path / "b1" / "hello.wav"
    with pytest.raises(RuntimeError):
        with store.open_atomic_writer("b1", "hello.wav") as fh:
            fh.write(b"garbage")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"RIFF"
    assert sorted(p.name for p in (tmp_path / "b1").iterdir()) == ["hello.wav", "sub"]


def test_atomic_writer_readers_never_see_partial(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"A" * 100_000)
    stop = threading.Event()
    seen = set()

    def reader():
        while not stop.is_set():
            data = target.read_bytes()
            seen.add((len(data), data[:1], data[-1:]))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(30):
            ch = b"B" if i % 2 == 0 else b"A"
            with atomic_writer(target) as fh:
                fh.write(ch * 50_000)
                fh.flush()
                fh.write(ch * 50_000)
    finally:
        stop.set()
        t.join()
    assert seen <= {(100_000, b"A", b"A"), (100_000, b"B", b"B")}


def test_invalid_bucket_names_rejected(tmp_path):
    with pytest.raises(ValueError):
        BucketStore({"a/b": tmp_path})
    with pytest.raises(ValueError):
        BucketStore({"..": tmp_path})
