"""Audiobooks (`reader render BOOK -o DIR/`): real renders of tiny books with the shipped models."""

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import soundfile

from reader.audiobook import WORK_FOLDER, RenderOptions, read_book, render_book
from reader.errors import ReaderError

ROOT = Path(__file__).resolve().parent.parent

BOOK = """# The Start

It was a bright cold day in April. The clocks were striking thirteen. Winston hurried home.
He slipped through the glass doors. A gritty wind came with him. The hallway smelt of cabbage.

# The Middle

He had 20 minutes left. Nobody saw him, or so he thought.

# The End

The end was near.
"""
# Two sentences a segment: the first chapter's seven sentences make four checkpoints.
OPTIONS = RenderOptions(segment_sentences=2)


@contextlib.contextmanager
def without_ffmpeg():
    """No ffmpeg on PATH: the whole book becomes book.flac and a cue sheet."""
    path, os.environ["PATH"] = os.environ["PATH"], ""
    try:
        yield
    finally:
        os.environ["PATH"] = path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chapter_files(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.glob("[0-9]* *.flac"))}


@pytest.fixture(scope="module")
def book_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("book") / "tiny.md"
    path.write_text(BOOK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(book_path, tmp_path_factory) -> Path:
    """An uninterrupted serial render, without ffmpeg: chapter FLACs, book.flac and a cue sheet."""
    out = tmp_path_factory.mktemp("reference")
    with without_ffmpeg():
        render_book(str(book_path), out, OPTIONS)
    return out


def test_markdown_book_gives_chapters_manifest_and_whole_book(reference):
    manifest = json.loads((reference / "manifest.json").read_text(encoding="utf-8"))
    text = (reference / "book.txt").read_text(encoding="utf-8")
    assert text == BOOK
    assert [c["title"] for c in manifest["chapters"]] == ["The Start", "The Middle", "The End"]
    assert [c["file"] for c in manifest["chapters"]] == ["01 The Start.flac", "02 The Middle.flac", "03 The End.flac"]
    offset = 0.0
    for chapter in manifest["chapters"]:
        info = soundfile.info(str(reference / chapter["file"]))
        assert info.samplerate == manifest["sample_rate"] and info.frames == chapter["samples"]
        assert chapter["duration"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
        assert chapter["offset"] == pytest.approx(offset, abs=1e-3)
        offset += chapter["duration"]
        sentences = chapter["sentences"]
        # sentences tile the chapter's audio, across segment seams too
        assert sentences[0]["start"] == 0.0 and sentences[-1]["end"] == pytest.approx(chapter["duration"], abs=1e-3)
        assert all(a["end"] == pytest.approx(b["start"], abs=1e-3) for a, b in zip(sentences, sentences[1:]))
        for sentence in sentences:
            assert chapter["start_char"] <= sentence["start_char"] < sentence["end_char"] <= chapter["end_char"]
            for word in sentence["words"]:
                assert sentence["start"] <= word["start"] < word["end"] <= sentence["end"] + 1e-3
                assert sentence["start_char"] <= word["start_char"] < word["end_char"] <= sentence["end_char"]
                source = text[word["start_char"] : word["end_char"]]
                assert source == word["text"] or source == "20"  # "20" is spoken "twenty"
    first = manifest["chapters"][0]["sentences"]
    assert len(first) == 7 and [w["text"] for w in first[1]["words"]] == ["It", "was", "a", "bright", "cold", "day", "in", "April"]
    assert manifest["duration"] == pytest.approx(offset, abs=1e-3)
    # the whole book: a FLAC of all chapters and a cue sheet pointing at each chapter's start
    assert manifest["book"]["file"] == "book.flac" and manifest["book"]["chapters_file"] == "book.cue"
    assert soundfile.info(str(reference / "book.flac")).frames == sum(c["samples"] for c in manifest["chapters"])
    cue = (reference / "book.cue").read_text()
    assert cue.count("TRACK") == 3 and 'TITLE "The Middle"' in cue and "INDEX 01 00:00:00" in cue
    # finished: no segments or partial files are left
    assert not list(reference.rglob("*.part")) and not list(reference.rglob("segment-*"))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_rerun_reuses_chapters_and_makes_m4b_with_ffmpeg(reference, book_path, tmp_path):
    out = tmp_path / "book"
    shutil.copytree(reference, out)  # the work folder's keys do not depend on where the folder is
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("0*.flac")}
    manifest = render_book(str(book_path), out, OPTIONS)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("0*.flac")} == before  # nothing re-rendered
    assert manifest["book"]["file"] == "book.m4b" and not (out / "book.flac").exists() and not (out / "book.cue").exists()
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(out / "book.m4b")], capture_output=True, text=True, check=True)
    chapters = json.loads(probe.stdout)["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["The Start", "The Middle", "The End"]
    assert float(chapters[1]["start_time"]) == pytest.approx(manifest["chapters"][1]["offset"], abs=0.01)


def test_resume_after_kill_is_identical(reference, book_path, tmp_path):
    out = tmp_path / "book"
    script = f"from reader.audiobook import *; render_book({str(book_path)!r}, {str(out)!r}, RenderOptions(segment_sentences=2))"
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PATH": ""})
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(f"{WORK_FOLDER}/*/segment-00001.npz")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    # killed inside the first chapter: two checkpoints written, no chapter finished
    assert len(list(out.glob(f"{WORK_FOLDER}/*/segment-*.npz"))) >= 2
    assert not list(out.glob("*.flac")) and not list(out.glob(f"{WORK_FOLDER}/*/chapter.json"))

    with without_ffmpeg():
        render_book(str(book_path), out, OPTIONS)
    assert chapter_files(out) == chapter_files(reference)
    resumed, uninterrupted = (json.loads((folder / "manifest.json").read_text()) for folder in (out, reference))
    assert resumed["chapters"] == uninterrupted["chapters"]  # timings and prosody choices included


def test_changed_text_or_options_are_not_reused(reference, book_path, tmp_path):
    out = tmp_path / "book"
    shutil.copytree(reference, out)
    changed = tmp_path / "tiny.md"
    changed.write_text(BOOK.replace("The end was near.", "The end was far away."), encoding="utf-8")
    manifest = render_book(str(changed), out, OPTIONS)
    files = chapter_files(out)
    assert {k: v for k, v in files.items() if not k.startswith("03")} == {k: v for k, v in chapter_files(reference).items() if not k.startswith("03")}
    assert files["03 The End.flac"] != chapter_files(reference)["03 The End.flac"]
    assert manifest["chapters"][2]["duration"] > json.loads((reference / "manifest.json").read_text())["chapters"][2]["duration"]
    faster = render_book(str(changed), out, RenderOptions(segment_sentences=2, speed=1.5))
    assert faster["duration"] < manifest["duration"] * 0.8
    assert len(list((out / WORK_FOLDER).iterdir())) == 3 + 1  # the old work was cleared (3 chapters + the lock)


def test_parallel_processes_give_the_same_audio(reference, book_path, tmp_path):
    render_book(str(book_path), tmp_path / "book", OPTIONS, jobs=2)
    assert chapter_files(tmp_path / "book") == chapter_files(reference)


def test_ray_tasks_give_the_same_audio(reference, book_path, tmp_path):
    pytest.importorskip("ray")
    # In a process of its own, as under `reader render --ray`: a Ray core worker started and shut down
    # inside the long-lived test process can crash it at exit (ray-project/ray#31145).
    render = (
        "import sys; from reader.audiobook import RenderOptions, render_book; "
        "render_book(sys.argv[1], sys.argv[2], RenderOptions(segment_sentences=int(sys.argv[3])), jobs=1, ray_address='local')"
    )
    done = subprocess.run([sys.executable, "-c", render, str(book_path), str(tmp_path / "book"), str(OPTIONS.segment_sentences)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert chapter_files(tmp_path / "book") == chapter_files(reference)


def make_epub(path: Path, drm: bool = False) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("tiny-epub")
    book.set_title("A Tiny Epub")
    book.set_language("en")
    pages = [
        ("Loomings", "<h1>Chapter One</h1><p>Call me Ishmael.</p><p>Some years ago, never mind how long, I went to sea.</p>"),
        ("The Carpet-Bag", "<p>I stuffed a shirt or two into my old carpet-bag.</p><script>alert('not read')</script>"),
    ]
    chapters = []
    for number, (title, body) in enumerate(pages, 1):
        chapter = epub.EpubHtml(title=title, file_name=f"chap{number}.xhtml", lang="en")
        chapter.content = f"<html><body>{body}</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = [epub.Link(c.file_name, title, c.file_name) for c, (title, _) in zip(chapters, pages)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)
    if drm:
        encryption = (
            '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">'
            '<enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
            '<enc:CipherData><enc:CipherReference URI="EPUB/chap1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>'
        )
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("META-INF/encryption.xml", encryption)
    return path


def test_epub_chapters_in_spine_order_with_toc_titles(tmp_path):
    path = make_epub(tmp_path / "tiny.epub")
    book = read_book(str(path))
    assert book.title == "A Tiny Epub"
    assert [c.title for c in book.chapters] == ["Loomings", "The Carpet-Bag"]  # the nav page is not read
    first, second = (book.text[c.start : c.end] for c in book.chapters)
    assert first == "# Chapter One\n\nCall me Ishmael.\n\nSome years ago, never mind how long, I went to sea."
    assert second == "I stuffed a shirt or two into my old carpet-bag."
    manifest = render_book(str(path), tmp_path / "out", OPTIONS)
    assert [c["file"] for c in manifest["chapters"]] == ["01 Loomings.flac", "02 The Carpet-Bag.flac"]
    text = (tmp_path / "out" / "book.txt").read_text(encoding="utf-8")
    words = [text[w["start_char"] : w["end_char"]] for s in manifest["chapters"][1]["sentences"] for w in s["words"]]
    assert words == ["I", "stuffed", "a", "shirt", "or", "two", "into", "my", "old", "carpet", "bag"]


def test_bad_epubs_give_one_line_errors(tmp_path):
    corrupt = tmp_path / "corrupt.epub"
    corrupt.write_bytes(make_epub(tmp_path / "good.epub").read_bytes()[:700])
    with pytest.raises(ReaderError, match="is not a readable EPUB"):
        read_book(str(corrupt))
    with pytest.raises(ReaderError, match="DRM-protected"):
        read_book(str(make_epub(tmp_path / "drm.epub", drm=True)))
    done = subprocess.run([sys.executable, "-m", "reader", "render", str(corrupt), "-o", str(tmp_path / "out") + "/"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not a readable EPUB" in done.stderr


def test_unwritable_output_folder_is_a_clear_error(book_path, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(ReaderError, match=r"cannot write to .*: Read-only file system"):
        render_book(str(book_path), small_disk / "book", OPTIONS)


def test_full_disk_keeps_finished_chapters(reference, book_path, small_disk, monkeypatch):
    from reader.audiobook import workers

    out = small_disk / "book"
    filler = small_disk / "filler"
    render_chapter, filled = workers.render_chapter, []

    def fill_disk_once_the_first_chapter_is_done(reader, job, progress):
        # In the renderer's own sequence, not from a thread racing it: a short chapter could finish
        # before a thread had filled the disk.
        if (out / "01 The Start.flac").exists() and not filled:
            with contextlib.suppress(OSError), filler.open("wb") as fh:
                while True:  # until the disk is full
                    fh.write(b"\0" * 65536)
                    fh.flush()
            filled.append(True)
        return render_chapter(reader, job, progress)

    monkeypatch.setattr(workers, "render_chapter", fill_disk_once_the_first_chapter_is_done)
    with without_ffmpeg():
        with pytest.raises(ReaderError, match="the disk is full .* finished chapters are kept"):
            render_book(str(book_path), out, OPTIONS)
        assert filled
        assert digest(out / "01 The Start.flac") == digest(reference / "01 The Start.flac")
        assert not list(out.glob("02*")) and not list(out.rglob("*.part"))
        filler.unlink()
        render_book(str(book_path), out, OPTIONS)
    assert chapter_files(out) == chapter_files(reference)


def test_command_line_refuses_audiobook_options_without_a_folder_and_ray_when_missing(book_path, tmp_path):
    done = subprocess.run([sys.executable, "-m", "reader", "render", str(book_path), "-o", str(tmp_path / "a.wav"), "--jobs", "2"], capture_output=True, text=True)
    assert done.returncode == 2 and "give an output folder" in done.stderr and done.stderr.count("\n") == 1
    no_ray = "import sys; sys.modules['ray'] = None; from reader.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", no_ray, "render", str(book_path), "-o", f"{tmp_path}/out/", "--ray", "local"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == "reader: error: --ray needs Ray: pip install 'reader-engine[ray]'\n"


def test_a_folder_with_files_the_render_did_not_make_is_refused_unless_overwrite(reference, book_path, tmp_path):
    from reader.errors import OutputError

    users = tmp_path / "users"
    users.mkdir()
    (users / "book.flac").write_bytes(b"the user's own recording")
    (users / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds files this render did not make \(book\.flac, notes\.txt\).*--overwrite"):
        render_book(str(book_path), users, OPTIONS)
    assert sorted(p.name for p in users.iterdir()) == ["book.flac", "notes.txt"]  # untouched, no work folder

    # a finished render of the same book may be rendered again; another book is refused
    out = tmp_path / "book"
    shutil.copytree(reference, out)
    other = tmp_path / "other.md"
    other.write_text("# Elsewhere\n\nA different book altogether.\n", encoding="utf-8")
    with pytest.raises(OutputError, match=r"holds the audiobook of another book \(tiny\)"):
        render_book(str(other), out, OPTIONS)
    (out / "cover.jpg").write_bytes(b"jpeg")
    with pytest.raises(OutputError, match=r"did not make \(cover\.jpg\)"):
        render_book(str(book_path), out, OPTIONS)
    assert chapter_files(out) == chapter_files(reference)

    # --overwrite writes there anyway: the user's other files stay, same-named ones are replaced
    with without_ffmpeg():
        manifest = render_book(str(other), users, OPTIONS, overwrite=True)
    assert (users / "notes.txt").read_text() == "mine" and manifest["book"]["file"] == "book.flac"
    assert soundfile.info(str(users / "book.flac")).frames == manifest["chapters"][0]["samples"]


def test_command_line_overwrite_flag_and_refusal(book_path, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    done = subprocess.run([sys.executable, "-m", "reader", "render", str(book_path), "-o", f"{folder}/"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--overwrite" in done.stderr
    done = subprocess.run([sys.executable, "-m", "reader", "render", str(book_path), "-o", str(tmp_path / "a.wav"), "--overwrite"], capture_output=True, text=True)
    assert done.returncode == 2 and "give an output folder" in done.stderr


def test_work_keys_see_the_default_prosody_by_name_and_ignore_python_caches(tmp_path, monkeypatch):
    from reader.audiobook import fingerprint
    from reader.prosody_prediction import DEFAULT_PROSODY

    models = tmp_path / "models"
    shutil.copytree(ROOT / "exported_models", models, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("READER_MODELS_DIR", str(models))
    before = fingerprint(RenderOptions())
    assert fingerprint(RenderOptions(prosody=DEFAULT_PROSODY)) == before
    (models / "__pycache__").mkdir()
    (models / "__pycache__" / "__init__.cpython-399.pyc").write_bytes(b"cache")
    assert fingerprint(RenderOptions()) == before
    assert fingerprint(RenderOptions(prosody="syntactic" if DEFAULT_PROSODY != "syntactic" else "centroid")) != before


def test_a_chapter_file_finished_just_before_an_interruption_counts_as_the_renders_own(reference, book_path, tmp_path):
    out = tmp_path / "book"
    shutil.copytree(reference, out)
    for saved in (out / WORK_FOLDER).glob("*/chapter.json"):  # killed between the file and its result
        saved.unlink()
    (out / "manifest.json").unlink()
    with without_ffmpeg():
        render_book(str(book_path), out, OPTIONS)
    assert chapter_files(out) == chapter_files(reference)
