"""The one media-reference check (connector.media_uri): every escape we know is refused."""

from __future__ import annotations

import os

import pytest

from clarifai_connect.connector import ReferenceRefused, media_uri


@pytest.fixture
def source(tmp_path):
    """A dataset folder with one image, next to a secret that must stay out of reach."""
    root = tmp_path / "dataset"
    (root / "images").mkdir(parents=True)
    (root / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 image")
    (tmp_path / "secret.txt").write_text("secret")
    return root


def test_relative_references_inside_the_root_resolve(source):
    assert media_uri("images/a.jpg", str(source)) == str(source / "images" / "a.jpg")
    assert media_uri("./images/../images/a.jpg", str(source)) == str(source / "images/a.jpg")
    # Joined to one folder, bounded by another: COCO's images folder inside the dataset.
    assert media_uri("../images/a.jpg", str(source / "images"), root=str(source)) == \
        str(source / "images" / "a.jpg")
    # A missing file is not refused here: it is reported when it is read.
    assert media_uri("images/missing.jpg", str(source)) == str(source / "images/missing.jpg")


@pytest.mark.parametrize("ref", [
    "../secret.txt",
    "images/../../secret.txt",
    "../../../../../../../../etc/hostname",
    "images/../../../etc/passwd",
])
def test_dot_dot_segments_out_of_the_root_are_refused(source, ref):
    with pytest.raises(ReferenceRefused, match="outside the source"):
        media_uri(ref, str(source))


@pytest.mark.parametrize("ref", ["/etc/hostname", "//etc/hostname", "file:///etc/passwd",
                                 "FILE:///etc/passwd", "file://localhost/etc/passwd",
                                 "local:///etc/passwd", "file:///etc/%70asswd"])
def test_absolute_paths_and_file_urls_are_refused(source, ref):
    with pytest.raises(ReferenceRefused):
        media_uri(ref, str(source))


def test_an_allowed_folder_opens_absolute_paths_and_file_urls_into_it(source, tmp_path):
    secret = str(tmp_path / "secret.txt")
    allowed = [str(tmp_path)]
    assert media_uri(secret, str(source), allowed=allowed) == secret
    assert media_uri("file://" + secret, str(source), allowed=allowed) == secret
    assert media_uri("../secret.txt", str(source), allowed=allowed) == secret
    with pytest.raises(ReferenceRefused):
        media_uri("/etc/hostname", str(source), allowed=allowed)
    # Absolute, but inside the source: nothing outside is read.
    inside = str(source / "images" / "a.jpg")
    assert media_uri(inside, str(source)) == inside


@pytest.mark.parametrize("ref", ["%2e%2e/secret.txt", "images/%2E%2E/%2e%2e/secret.txt",
                                 "..%2fsecret.txt", "%2e%2e%2f%2e%2e%2fetc%2fpasswd"])
def test_percent_encoded_escapes_are_refused(source, ref):
    with pytest.raises(ReferenceRefused, match="outside the source"):
        media_uri(ref, str(source))


def test_percent_signs_that_stay_inside_are_kept_literally(source):
    assert media_uri("images/100%25.jpg", str(source)) == str(source / "images/100%25.jpg")


@pytest.mark.parametrize("ref", ["..\\secret.txt", "images\\..\\..\\secret.txt",
                                 "C:\\Windows\\win.ini", "c:/windows/win.ini",
                                 "\\\\server\\share\\x.jpg"])
def test_backslash_escapes_are_refused(source, ref):
    with pytest.raises(ReferenceRefused):
        media_uri(ref, str(source))


def test_backslashes_are_folder_separators(source):
    assert media_uri("images\\a.jpg", str(source)) == str(source / "images" / "a.jpg")


def test_symlinks_out_of_the_root_are_refused(source, tmp_path):
    (source / "images" / "link.jpg").symlink_to(tmp_path / "secret.txt")
    (source / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ReferenceRefused, match="outside the source"):
        media_uri("images/link.jpg", str(source))
    with pytest.raises(ReferenceRefused, match="outside the source"):
        media_uri("elsewhere/secret.txt", str(source))
    with pytest.raises(ReferenceRefused, match="outside the source"):
        media_uri("elsewhere/not-there-yet.jpg", str(source))


def test_symlinks_inside_the_root_are_followed(source):
    (source / "alias.jpg").symlink_to(source / "images" / "a.jpg")
    assert media_uri("alias.jpg", str(source)) == str(source / "alias.jpg")


def test_a_root_behind_a_symlink_still_holds_its_files(source, tmp_path):
    (tmp_path / "link-to-dataset").symlink_to(source, target_is_directory=True)
    base = str(tmp_path / "link-to-dataset")
    assert media_uri("images/a.jpg", base) == os.path.join(base, "images", "a.jpg")
    with pytest.raises(ReferenceRefused):
        media_uri("../secret.txt", base)


def test_a_symlink_loop_is_refused(source):
    (source / "loop-a").symlink_to(source / "loop-b")
    (source / "loop-b").symlink_to(source / "loop-a")
    with pytest.raises(ReferenceRefused, match="symlink loop"):
        media_uri("loop-a", str(source))
    with pytest.raises(ReferenceRefused, match="symlink loop"):
        media_uri("loop-a/x.jpg", str(source))


@pytest.mark.parametrize("ref", ["a" * 300 + ".jpg", "/".join(["d" * 200] * 30) + "/x.jpg"])
def test_very_long_names_are_refused(source, ref):
    with pytest.raises(ReferenceRefused, match="too long"):
        media_uri(ref, str(source))


@pytest.mark.parametrize("ref", ["images/a.jpg\x00.png", "\x00/etc/passwd", "a\x00"])
def test_nul_bytes_are_refused(source, ref):
    with pytest.raises(ReferenceRefused, match="NUL"):
        media_uri(ref, str(source))


@pytest.mark.parametrize("ref", ["https://example.com/a.jpg", "http://example.com/../a.jpg",
                                 "s3://bucket/key/a.jpg", "gs://bucket/a.png"])
def test_remote_urls_are_kept(source, ref):
    assert media_uri(ref, str(source)) == ref


@pytest.mark.parametrize("ref", ["simplecache::file:///etc/passwd", "memory://x/a.jpg",
                                 "ftp://host/a.jpg", "sftp://host/etc/passwd",
                                 "data://text/plain;base64,AAAA"])
def test_other_schemes_and_chained_urls_are_refused(source, ref):
    with pytest.raises(ReferenceRefused):
        media_uri(ref, str(source))


def test_relative_references_of_a_remote_source_keep_its_protocol():
    assert media_uri("img/a.jpg", "s3://bucket/data") == "s3://bucket/data/img/a.jpg"
    assert media_uri("../img/a.jpg", "s3://bucket/data/images", root="s3://bucket/data") == \
        "s3://bucket/data/img/a.jpg"
    for ref in ("../other/a.jpg", "/bucket/other/a.jpg", "%2e%2e/other/a.jpg",
                "file:///etc/passwd", "..\\other\\a.jpg"):
        with pytest.raises(ReferenceRefused):
            media_uri(ref, "s3://bucket/data")
    assert media_uri("../other/a.jpg", "s3://bucket/data", allowed=["s3://bucket/other"]) == \
        "s3://bucket/other/a.jpg"


def test_file_url_sources_stay_file_urls(source):
    base = "file://" + str(source)
    assert media_uri("images/a.jpg", base) == "file://" + str(source / "images" / "a.jpg")
    with pytest.raises(ReferenceRefused):
        media_uri("../secret.txt", base)


def test_the_refusal_is_a_record_error_naming_the_reference(source):
    from clarifai_connect.records import RecordError

    with pytest.raises(RecordError) as caught:
        media_uri("../secret.txt", str(source))
    assert "'../secret.txt'" in str(caught.value) and "--allow-path" in str(caught.value)
