"""trio_ws.app.static: finding a mounted file for a request path, never outside its directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from trio_ws.app.static import CLIENT_SCRIPT, StaticFiles, client_script


def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "app.css").write_text("body {}")
    (root / "blob.unknownext").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("secret")
    return root


def test_a_directory_maps_to_its_index_and_types_carry_a_charset(tmp_path: Path) -> None:
    files = StaticFiles()
    files.mount("/site/", site(tmp_path))
    assert files.find("/site") == (b"<h1>home</h1>", "text/html; charset=utf-8")
    assert files.find("/site/") == (b"<h1>home</h1>", "text/html; charset=utf-8")
    assert files.find("/site/docs") == (b"<h1>docs</h1>", "text/html; charset=utf-8")
    assert files.find("/site/app.css") == (b"body {}", "text/css; charset=utf-8")
    assert files.find("/site/blob.unknownext") == (b"\x00\x01", "application/octet-stream")
    assert files.find("/site/missing.txt") is None
    assert files.find("/sitemap") is None  # a prefix matches whole segments only
    assert files.find("/other/app.css") is None


def test_paths_that_leave_the_directory_find_nothing(tmp_path: Path) -> None:
    root = site(tmp_path)
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    files = StaticFiles()
    files.mount("/site", root)
    assert files.find("/site/../secret.txt") is None
    assert files.find("/site/docs/../../secret.txt") is None
    assert files.find("/site/link.txt") is None  # a symbolic link out of the directory


def test_mounts_are_tried_in_the_order_they_were_added(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second):
        directory.mkdir()
        (directory / "same.txt").write_text(directory.name)
    (second / "only.txt").write_text("second only")
    files = StaticFiles()
    files.mount("/", first)
    files.mount("/", second)
    assert files.find("/same.txt") == (b"first", "text/plain; charset=utf-8")
    assert files.find("/only.txt") == (b"second only", "text/plain; charset=utf-8")


def test_mounting_needs_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    files = StaticFiles()
    for target in (tmp_path / "missing", tmp_path / "file.txt"):
        with pytest.raises(ValueError, match="not a directory"):
            files.mount("/x", target)


def test_the_bundled_client_script() -> None:
    body, kind = client_script()
    assert CLIENT_SCRIPT == "trio_ws.js"
    assert kind == "text/javascript; charset=utf-8"
    assert b"export function connect" in body
