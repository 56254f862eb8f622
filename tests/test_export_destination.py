"""The destination of an export: files written in the background (a chunk per task on a
local disk), each record settled once all its files exist, one file's failure its own."""

from __future__ import annotations

from clarifai_connect.exports.files import CHUNK_FILES, Destination


def test_files_are_written_in_chunks_and_settle_with_their_owner(tmp_path):
    dest = Destination(str(tmp_path / "out"), workers=2)
    total = 3 * CHUNK_FILES + 5  # full chunks and a partial one, which wait() sends
    (tmp_path / "out" / "blocked").write_bytes(b"a file, not a folder")
    for n in range(total):
        dest.begin(f"o{n}")
        dest.put(f"d{n % 3}/f{n}.bin", bytes([n % 256]) * n, owner=f"o{n}")
        if n == 7:  # under a file: this one cannot be written
            dest.put("blocked/x.bin", b"x", owner="o7")
        dest.put(f"lazy/{n}.bin", lambda n=n: b"lazy%d" % n, owner=f"o{n}")
        dest.end(f"o{n}")
    dest.wait()
    settled = dict(dest.settled())
    dest.close()
    assert sorted(settled) == sorted(f"o{n}" for n in range(total))
    assert [o for o, errors in settled.items() if errors] == ["o7"]
    assert "blocked/x.bin" in settled["o7"][0]
    for n in range(total):
        assert (tmp_path / "out" / f"d{n % 3}" / f"f{n}.bin").read_bytes() == bytes([n % 256]) * n
        assert (tmp_path / "out" / "lazy" / f"{n}.bin").read_bytes() == b"lazy%d" % n


def test_a_record_settles_only_once_its_chunk_is_written(tmp_path):
    dest = Destination(str(tmp_path / "out"), workers=2)
    dest.begin("a")
    dest.put("a.bin", b"a", owner="a")
    dest.end("a")
    assert dest.settled() == []  # held for a chunk: not written yet, not settled
    assert not (tmp_path / "out" / "a.bin").exists()
    dest.flush()
    dest.wait()
    assert dest.settled() == [("a", [])]
    assert (tmp_path / "out" / "a.bin").read_bytes() == b"a"
    dest.close()
