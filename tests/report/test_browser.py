"""The headless-browser harness (tests/browser.py): it must see every request a page tries, and every error."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from browser import open_report, require_chromium

from helpers import page_verdict, recorded_report, rendered


@pytest.fixture(autouse=True)
def chromium_path() -> str:
    """Skips these tests without chromium (fails them if REPROKIT_REQUIRE_BROWSER=1)."""
    return require_chromium()


def write(tmp_path: Path, body: str, head: str = "") -> Path:
    """An HTML page in tmp_path."""
    page = tmp_path / "report.html"
    page.write_text(f"<!doctype html><html><head><meta charset=utf-8>{head}</head><body>{body}</body></html>")
    return page


def png_size(path: Path) -> tuple[int, int]:
    """The width and height of a PNG, from its IHDR chunk (after checking the signature)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def browser_processes(marker: str) -> list[str]:
    """The command lines of the running (not zombie) processes that mention ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        if marker in text:
            found.append(text)
    return found


def test_a_self_contained_page_makes_no_request(tmp_path: Path) -> None:
    style = "<style>body { font-family: sans-serif } .tall { height: 3000px; background: #def }</style>"
    svg = '<svg width="120" height="60"><rect width="120" height="60" fill="teal"/><text y="40">chart</text></svg>'
    html = write(tmp_path, f"<h1>A reproducible run</h1>{svg}<div class=tall>tall</div>", head=style)

    page = open_report(html, tmp_path / "shot.png")

    assert page.requests == ()
    assert page.console_errors == ()
    assert "A reproducible run" in page.dom and "<svg" in page.dom
    assert page.screenshot == tmp_path / "shot.png"
    width, height = png_size(page.screenshot)
    assert width == 1280
    assert height >= 3000  # the whole page, not the 800-pixel viewport


def test_the_tops_of_the_elements_asked_for_are_measured_in_page_pixels(tmp_path: Path) -> None:
    body = '<h1 id="a">first</h1><div style="height: 2000px"></div><p class="b">one</p><p class="b">two</p>'

    page = open_report(write(tmp_path, body), tmp_path / "shot.png", measure=("#a", "p.b", "figure"))

    (heading,) = page.tops["#a"]
    one, two = page.tops["p.b"]
    assert heading < 100 and heading + 2000 < one < two  # below the 2000-pixel block, in document order
    assert page.tops["figure"] == ()


def test_a_check_page_shows_its_fixes_above_its_first_plot(tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    html.write_text(recorded_report("ops").to_html())  # the seed and the ops pair differ: two fixes, five plots

    page = rendered(html, tmp_path)

    fixes, plots = page.tops['section.panel[id$="-why-and-the-fix"]'], page.tops["figure"]
    assert len(fixes) == 2 and len(plots) >= 3
    assert max(fixes) < min(plots)
    assert page.tops != {} and page_verdict(page).startswith("reproducible under control")


def test_the_screenshot_has_the_width_asked_for_and_at_least_the_viewport_height(tmp_path: Path) -> None:
    page = open_report(write(tmp_path, "<p>short</p>"), tmp_path / "shot.png", width=600)

    assert png_size(page.screenshot) == (600, 800)


def test_fetches_of_images_stylesheets_fonts_and_files_beside_the_report_are_recorded(tmp_path: Path) -> None:
    head = (
        '<link rel="stylesheet" href="http://example.org/s.css">'
        "<style>@font-face { font-family: Remote; src: url(https://fonts.example/f.woff2) format('woff2') }"
        " p { font-family: Remote }</style>"
    )
    body = '<p>text in the remote font</p><img src="https://example.com/x.png"><img src="other.png">'

    page = open_report(write(tmp_path, body, head=head), tmp_path / "shot.png")

    other = (tmp_path / "other.png").as_uri()
    for url in ("https://example.com/x.png", "http://example.org/s.css", "https://fonts.example/f.woff2", other):
        assert url in page.requests
    assert any("ERR_INTERNET_DISCONNECTED" in error for error in page.console_errors)  # the network was off


def test_fetches_from_scripts_frames_and_workers_are_recorded_too(tmp_path: Path) -> None:
    worker = "fetch('https://worker.example/w').catch(() => {})"
    script = f"""<script>
        fetch("https://fetch.example/f").catch(() => {{}});
        const xhr = new XMLHttpRequest(); xhr.open("GET", "http://xhr.example/x"); xhr.send();
        new WebSocket("wss://socket.example/s");
        new Worker(URL.createObjectURL(new Blob([{worker!r}], {{type: "text/javascript"}})));
    </script>"""
    (tmp_path / "frame.html").write_text('<img src="https://in-a-sandboxed-frame.example/i.png">')
    frames = '<iframe src="https://frame.example/"></iframe><iframe sandbox src="frame.html"></iframe>'
    body = f'<script src="https://cdn.example/lib.js"></script>{frames}{script}'

    page = open_report(write(tmp_path, body), tmp_path / "shot.png")

    for url in (
        "https://cdn.example/lib.js",
        "https://frame.example/",
        (tmp_path / "frame.html").as_uri(),
        "https://in-a-sandboxed-frame.example/i.png",  # a frame of its own process, so a target of its own
        "https://fetch.example/f",
        "http://xhr.example/x",
        "wss://socket.example/s",
        "https://worker.example/w",
    ):
        assert url in page.requests


def test_an_exception_in_an_inline_script_is_a_console_error(tmp_path: Path) -> None:
    html = write(tmp_path, "<p>text</p><script>console.error('logged', 42); throw new Error('it broke')</script>")

    page = open_report(html, tmp_path / "shot.png")

    assert page.requests == ()
    assert "logged 42" in page.console_errors
    assert any("Error: it broke" in error for error in page.console_errors)
    assert "<p>text</p>" in page.dom


def test_a_page_that_never_loads_times_out_and_leaves_no_browser_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the browser's profile, hence its command line
    html = write(tmp_path, "<p>busy</p><script>while (true) {}</script>")

    with pytest.raises(TimeoutError):
        open_report(html, tmp_path / "shot.png", timeout=2)

    assert browser_processes(f"--user-data-dir={tmp_path}") == []
    assert not list(tmp_path.glob("reprokit-chromium-*"))  # the profile is removed


def test_a_browser_that_quits_at_once_is_an_error_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPROKIT_CHROMIUM", "/bin/false")

    with pytest.raises(ConnectionError, match="closed the DevTools pipe"):
        open_report(write(tmp_path, "<p>text</p>"), tmp_path / "shot.png", timeout=10)


def test_a_missing_page_is_an_error_before_any_browser_starts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_report(tmp_path / "missing.html", tmp_path / "shot.png")
