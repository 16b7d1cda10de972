"""Self-contained HTML and GitHub-markdown reports a reviewer can read offline.

A report is a title and a sequence of ``Section``s, each holding paragraphs, ``Table``s and
``Image``s (PNG bytes, e.g. from ``sensequant_assets.evaluation.charts``). ``render_html``
produces one UTF-8 file with inline CSS and every image embedded as a ``data:`` URI: no
external stylesheet, script, font or CDN, so it opens from a USB stick or an air-gapped
review box. Every piece of caller text is escaped with ``html.escape``.

``render_markdown`` renders the same structure as GitHub markdown (``validation_summary.md``,
``stress_report.md``), readable with ``cat``: only what Markdown would take for HTML is
backslash-escaped; images are linked by relative path, written next to it with
``write_png``. ``write_report``/``write_png`` write atomically (temp file in the target
directory, fsynced, then renamed; see :mod:`sensequant_assets.atomic`), so a reader never
sees a half-written report.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from sensequant_assets.atomic import write_atomic

__all__ = [
    "MISSING",
    "PNG_SIGNATURE",
    "Image",
    "Section",
    "Table",
    "format_value",
    "render_html",
    "render_markdown",
    "write_png",
    "write_report",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MISSING = "—"
"""How None, NaN, NaT and pandas NA are shown in tables."""

Formatter = Callable[[object], str]


@dataclass(frozen=True)
class Table:
    """A captioned table; every row has one value per column. Values go through a formatter."""

    caption: str
    columns: Sequence[str]
    rows: Sequence[Sequence[object]]

    def __post_init__(self) -> None:
        columns = tuple(str(c) for c in self.columns)
        if not columns:
            raise ValueError(f"table {self.caption!r} has no columns")
        rows = tuple(tuple(row) for row in self.rows)
        for number, row in enumerate(rows, start=1):
            if len(row) != len(columns):
                raise ValueError(
                    f"table {self.caption!r}: row {number} has {len(row)} values "
                    f"for {len(columns)} columns"
                )
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)


@dataclass(frozen=True)
class Image:
    """A captioned PNG image (the raw file bytes)."""

    caption: str
    png: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.png, bytes | bytearray) or not self.png.startswith(PNG_SIGNATURE):
            raise ValueError(f"image {self.caption!r} is not PNG data")
        object.__setattr__(self, "png", bytes(self.png))


@dataclass(frozen=True)
class Section:
    """A headed part of a report: paragraphs, then tables, then images."""

    heading: str
    paragraphs: Sequence[str] = ()
    tables: Sequence[Table] = ()
    images: Sequence[Image] = ()

    def __post_init__(self) -> None:
        if isinstance(self.paragraphs, str):
            raise TypeError("Section.paragraphs must be a sequence of strings, not one string")
        object.__setattr__(self, "paragraphs", tuple(str(p) for p in self.paragraphs))
        object.__setattr__(self, "tables", tuple(self.tables))
        object.__setattr__(self, "images", tuple(self.images))


# --------------------------------------------------------------------------- values


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(value != value)  # NaN, numpy.datetime64("NaT")
    except (TypeError, ValueError):  # arrays and other exotic objects
        return False


def _format_float(value: float, digits: int) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == 0:
        return "0"
    # Round to `digits` significant digits first, so 9.99996 becomes 10.00, not 9.9999/10.000.
    rounded = float(f"{value:.{digits - 1}e}")
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude >= digits - 1:
        return f"{rounded:,.0f}"
    if magnitude < -4:
        return f"{rounded:.{digits - 1}e}"
    return f"{rounded:.{digits - 1 - magnitude}f}"


def format_value(value: object, *, digits: int = 4) -> str:
    """Text for one table cell.

    None/NaN/NaT/NA → "—"; bools → "yes"/"no"; integers with thousands separators
    (1,234,567); floats to ``digits`` significant digits (0.5432, 1.235, 12.35, 1,235 for
    1234.5, 1.235e-05 below 1e-4); infinities as ∞/-∞; dates in ISO format; anything else
    via ``str``.
    """
    if digits < 1:
        raise ValueError("digits must be at least 1")
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return _format_float(float(value), digits)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _is_numeric(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _numeric_columns(table: Table) -> list[bool]:
    """A column is right-aligned when it has a number and nothing but numbers or blanks."""
    flags = []
    for index in range(len(table.columns)):
        cells = [row[index] for row in table.rows if not _is_missing(row[index])]
        flags.append(bool(cells) and all(_is_numeric(cell) for cell in cells))
    return flags


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; margin: 0; color: #1f2328; background: #fff; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.8rem; border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; }
p { white-space: pre-line; }
nav ol { margin: 0; padding-left: 1.4rem; }
nav a, nav a:visited { color: #0969da; text-decoration: none; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .9rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fbfcfd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.empty { color: #57606a; font-style: italic; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: .9rem; margin-top: .3rem; }
""".strip()


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_table(table: Table, formatter: Formatter) -> list[str]:
    numeric = _numeric_columns(table)
    out = ['<div class="table-wrap">', "<table>"]
    if table.caption:
        out.append(f"<caption>{_esc(table.caption)}</caption>")
    header = "".join(f'<th scope="col">{_esc(c)}</th>' for c in table.columns)
    out += ["<thead>", f"<tr>{header}</tr>", "</thead>", "<tbody>"]
    if not table.rows:
        out.append(f'<tr><td class="empty" colspan="{len(table.columns)}">no rows</td></tr>')
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{_esc(formatter(v))}</td>'
            if num
            else f"<td>{_esc(formatter(v))}</td>"
            for v, num in zip(row, numeric, strict=True)
        )
        out.append(f"<tr>{cells}</tr>")
    out += ["</tbody>", "</table>", "</div>"]
    return out


def _html_image(image: Image) -> list[str]:
    data = base64.b64encode(image.png).decode("ascii")
    return [
        "<figure>",
        f'<img src="data:image/png;base64,{data}" alt="{_esc(image.caption)}">',
        f"<figcaption>{_esc(image.caption)}</figcaption>",
        "</figure>",
    ]


def render_html(
    title: str,
    sections: Sequence[Section],
    *,
    formatter: Formatter = format_value,
) -> str:
    """One self-contained HTML document; ``formatter`` turns table values into text."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_esc(title)}</h1>",
    ]
    if len(sections) > 1:
        out.append('<nav aria-label="Contents"><ol>')
        out += [
            f'<li><a href="#section-{n}">{_esc(s.heading)}</a></li>'
            for n, s in enumerate(sections, start=1)
        ]
        out.append("</ol></nav>")
    for number, section in enumerate(sections, start=1):
        out.append(f'<section id="section-{number}">')
        out.append(f"<h2>{_esc(section.heading)}</h2>")
        out += [f"<p>{_esc(p)}</p>" for p in section.paragraphs]
        for table in section.tables:
            out += _html_table(table, formatter)
        for image in section.images:
            out += _html_image(image)
        out.append("</section>")
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- markdown


_MD_HTML = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def _md_no_html(text: str) -> str:
    """``<`` opening a tag and ``&`` opening an entity, backslash-escaped."""
    return _MD_HTML.sub(lambda match: "\\" + match.group(), text)


def _md_text(text: object) -> str:
    """Caller text for markdown, with no raw HTML getting through, yet readable as a file:
    ``buy & hold`` and ``x <= 0`` stay as written (entities would read ``&amp;``)."""
    # backslashes right before < or & would escape the escape: make them literal first
    return _md_no_html(re.sub(r"\\+(?=[<&])", lambda m: m.group() * 2, str(text)))


def _md_cell(text: object) -> str:
    cell = _md_no_html(str(text).replace("\\", "\\\\")).replace("|", "\\|")
    return "<br>".join(cell.splitlines()) if "\n" in cell or "\r" in cell else cell


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(table: Table, formatter: Formatter) -> list[str]:
    out = []
    if table.caption:
        out += [f"**{_md_text(table.caption)}**", ""]
    numeric = _numeric_columns(table)
    out.append(_md_row([_md_cell(c) for c in table.columns]))
    out.append(_md_row(["---:" if num else "---" for num in numeric]))
    for row in table.rows:
        out.append(_md_row([_md_cell(formatter(v)) for v in row]))
    if not table.rows:
        out.append(_md_row(["_no rows_"] + [""] * (len(table.columns) - 1)))
    out.append("")
    return out


def _md_link_target(path: str) -> str:
    return quote(str(path).replace("\\", "/"), safe="/._-~#")


def render_markdown(
    title: str,
    sections: Sequence[Section],
    image_paths: Mapping[str, str] | None = None,
    *,
    formatter: Formatter = format_value,
) -> str:
    """The same report as GitHub markdown.

    Tables become pipe tables (numeric columns right-aligned); an image becomes
    ``![caption](path)`` with ``path = image_paths[caption]`` (relative to the markdown file),
    and is left out when its caption has no path.
    """
    image_paths = image_paths or {}
    out = [f"# {_md_text(title)}", ""]
    for section in sections:
        out += [f"## {_md_text(section.heading)}", ""]
        for paragraph in section.paragraphs:
            out += [_md_text(paragraph), ""]
        for table in section.tables:
            out += _md_table(table, formatter)
        for image in section.images:
            path = image_paths.get(image.caption)
            if not path:
                continue
            alt = _md_text(image.caption).replace("[", "\\[").replace("]", "\\]")
            out += [f"![{alt}]({_md_link_target(path)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- files


def write_report(path: Path, html: str) -> Path:
    """Write ``html`` (or markdown) as UTF-8 to ``path`` atomically, creating parent dirs."""
    return write_atomic(path, html.encode("utf-8"))


def write_png(path: Path, png: bytes) -> Path:
    """Write PNG bytes to ``path`` atomically, creating parent dirs."""
    if not bytes(png[: len(PNG_SIGNATURE)]) == PNG_SIGNATURE:
        raise ValueError(f"write_png: data for {path} is not a PNG")
    return write_atomic(path, bytes(png))
