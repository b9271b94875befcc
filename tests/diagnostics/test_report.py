"""``recur inspect DIR --text ... --out report.html``: one self-contained page per task.

The page is parsed with html.parser; every <img> must carry a data: URI that decodes to a
PNG Pillow can load, and nothing may point at another file. Checkpoints are the tiny
sentiment, tagger and translation models the serving tests train in seconds.
"""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from serve_models import tiny_sentiment, tiny_tagger, tiny_translator

from recur.cli import main
from recur.diagnostics.report import Report, png_data_uri


class Page(HTMLParser):
    """The <img> sources, headings and any reference to an outside file."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attrs_ = dict(attrs)
        if tag == "img":
            self.images.append(attrs_.get("src") or "")
        for name in ("href", "src"):
            value = attrs_.get(name)
            if value is not None and tag != "img" and not value.startswith(("#", "data:")):
                self.external.append(f"<{tag} {name}={value}>")


def rendered_pngs(path: Path) -> tuple[Page, list[Image.Image]]:
    """Parse the report; every image must be an embedded, loadable PNG."""
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.external == []
    assert page.images, "the report has no images"
    pngs = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), f"not an embedded PNG: {src[:60]!r}"
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        image.load()                                   # decodes every row: not truncated
        assert image.size[0] > 100 and image.size[1] > 100
        pngs.append(image)
    return page, pngs


@pytest.mark.parametrize("task, checkpoint, texts, figures", [
    ("sentiment", tiny_sentiment, ["the plot was awful", "a wonderful film"], 3),
    ("tagger", tiny_tagger, ["John visited Paris today ."], 3),
    ("translate", tiny_translator, ["a b c", "d e f g"], 3),
])
def test_report_renders_every_figure_embedded(task, checkpoint, texts, figures, tmp_path, capsys):
    out = tmp_path / "report.html"
    args = ["inspect", str(checkpoint())]
    for text in texts:
        args += ["--text", text]
    assert main(args + ["--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page, pngs = rendered_pngs(out)
    assert len(pngs) == figures * len(texts)           # no missing images
    assert page.tags.count("section") == 1 + len(texts)      # the model, then each text
    assert list(tmp_path.iterdir()) == [out]           # no PNG or temporary file beside it


def test_report_names_what_each_task_shows(tmp_path):
    """Attributions for classifiers, emissions for taggers, alignments for translators."""
    expected = {"sentiment": (tiny_sentiment, "a wonderful film", "integrated gradients"),
                "tagger": (tiny_tagger, "Mary lives in Rome .", "emission scores"),
                "translate": (tiny_translator, "a b c", "attention alignment")}
    for task, (checkpoint, text, phrase) in expected.items():
        out = tmp_path / f"{task}.html"
        assert main(["inspect", str(checkpoint()), "--text", text, "--out", str(out)]) == 0
        page = out.read_text(encoding="utf-8")
        assert phrase in page and "gradient flow" in page and "gates" in page
        assert "the model" in page and "Param #" in page           # recur summary


@pytest.mark.parametrize("checkpoint, names", [
    (tiny_tagger, ["text0-s0-tag-scores", "text0-s0-gates", "text0-s0-gradient-flow"]),
    (tiny_translator, ["text0-attention", "text0-encoder-gates", "text0-gradient-flow"]),
])
def test_a_folder_out_still_gets_pngs(checkpoint, names, tmp_path):
    assert main(["inspect", str(checkpoint()), "--text", "Anna went to Berlin ." if
                 checkpoint is tiny_tagger else "a b c", "--out", str(tmp_path / "figs")]) == 0
    for name in names:
        with Image.open(tmp_path / "figs" / f"{name}.png") as image:
            assert image.format == "PNG"


def test_tagger_inspect_prints_the_decoded_tags(capsys):
    assert main(["inspect", str(tiny_tagger()), "--text", "Peter visited London ."]) == 0
    printed = capsys.readouterr().out
    assert "B-PER" in printed and "B-LOC" in printed and "runner-up" in printed


def test_html_out_in_a_missing_folder_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "report.html"
    assert main(["inspect", str(tiny_sentiment()), "--text", "good", "--out", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "does not exist" in err
    assert not missing.parent.exists()


def test_a_failed_report_leaves_no_file(tmp_path):
    out = tmp_path / "report.html"
    with pytest.raises(ValueError, match="is not a PNG"), Report(out) as report:
        fake = report.figure("fake.png")
        fake.write_bytes(b"GIF89a not a png")
        report.add("broken", figures=[("fake", fake)])
        report.close()
    assert not out.exists() and not report.folder.exists()


def test_png_data_uri_round_trips(tmp_path):
    path = tmp_path / "dot.png"
    Image.new("RGB", (2, 3), "red").save(path)
    uri = png_data_uri(path)
    assert base64.b64decode(uri.removeprefix("data:image/png;base64,")) == path.read_bytes()
