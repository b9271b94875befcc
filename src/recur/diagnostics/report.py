"""The output of ``recur inspect``: PNG figures and text tables, as a folder or one HTML page.

    report = Report("out/")                         # a folder of PNGs (the text is printed)
    report = Report("report.html", title="...")     # one self-contained HTML page
    path = report.figure("text0-gates.png")         # where a plot_* function should draw
    plot_gates(recording, path, tokens=words)
    report.add("this movie is awful", text=table, figures=[("gates and states", path)])
    written = report.close()                        # the PNGs, or [the HTML file]

Every task's ``inspect_command`` draws with the plot functions that already exist
(``plot_attributions``, ``plot_gates``, ``plot_gradient_flow``, ``Translator.plot_attention``,
``plot_tag_scores``) into ``report.figure(name)``. For a folder that is the folder itself;
for an HTML page it is a temporary folder, and ``close`` reads every PNG back, checks it is
a PNG, embeds it as a base64 ``data:`` URI and deletes the folder, so the page needs no
other file. The page is written to a temporary name and renamed, so an earlier report is
never left half-overwritten.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

import recur

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTML_SUFFIXES = (".html", ".htm")


@dataclass
class Section:
    """One part of a report: a heading, preformatted text, and (caption, PNG path) figures."""

    title: str
    text: str = ""
    figures: list[tuple[str, Path]] = field(default_factory=list)


class Report:
    """Collects sections; ``close`` writes the folder's PNGs or one HTML page.

    Args:
        out: a folder (created) for the PNGs, or a path ending in ``.html`` / ``.htm`` for
            a self-contained page (its folder must exist).
        title: the page's title and top heading (HTML only).
        model: when given, the page opens with its ``recur summary`` table.
    """

    def __init__(self, out: str | os.PathLike, title: str = "recur inspect",
                 model: nn.Module | None = None) -> None:
        out = Path(out)
        self.title = title
        self.sections: list[Section] = []
        self.html: Path | None = out if out.suffix.lower() in HTML_SUFFIXES else None
        if self.html is not None:
            if out.is_dir():
                raise ValueError(f"--out {out} is a folder; a report must be a file name "
                                 "ending in .html")
            if not out.parent.is_dir():
                raise ValueError(f"--out {out}: folder {out.parent} does not exist")
            self.folder = Path(tempfile.mkdtemp(prefix="recur-report-"))
        else:
            if out.exists() and not out.is_dir():
                raise ValueError(f"--out {out} exists and is not a folder (a report must "
                                 "end in .html)")
            out.mkdir(parents=True, exist_ok=True)
            self.folder = out
        if model is not None:
            from recur.summary import summary

            self.add("the model", summary(model))

    def figure(self, name: str) -> Path:
        """The path a figure called ``name`` (e.g. ``text0-gates.png``) should be drawn to."""
        return self.folder / name

    def add(self, title: str, text: str = "",
            figures: Sequence[tuple[str, str | os.PathLike]] = ()) -> Section:
        """Add a section: ``figures`` are (caption, path) pairs of PNGs drawn already."""
        section = Section(title, text, [(caption, Path(path)) for caption, path in figures])
        self.sections.append(section)
        return section

    def close(self) -> list[Path]:
        """Write the report. Returns the PNG paths (folder) or ``[the HTML path]``."""
        if self.html is None:
            return [path for s in self.sections for _, path in s.figures]
        try:
            page = render_html(self.title, self.sections)
            tmp = self.html.with_name(f".{self.html.name}.tmp")
            tmp.write_text(page, encoding="utf-8")
            tmp.replace(self.html)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return [self.html]

    def __enter__(self) -> Report:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None and self.html is not None:  # failed: leave no temporary folder
            shutil.rmtree(self.folder, ignore_errors=True)


def png_data_uri(path: str | os.PathLike) -> str:
    """``data:image/png;base64,...`` of a PNG file; a ValueError if it is not a PNG."""
    data = Path(path).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file (it starts with {data[:8]!r})")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
"""


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The page: every figure embedded as a data URI, every text escaped."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>Written by recur {e(recur.__version__)}; every image is embedded in this "
             "file.</p>"]
    for section in sections:
        parts.append(f"<section><h2>{e(section.title)}</h2>")
        if section.text:
            parts.append(f"<pre>{e(section.text)}</pre>")
        for caption, path in section.figures:
            parts.append(f'<figure><img src="{png_data_uri(path)}" alt="{e(caption)}">'
                         f"<figcaption>{e(caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
