"""Charts and offline reports: real PNGs, self-contained escaped HTML, markdown, atomic writes."""

from __future__ import annotations

import base64
import fnmatch
import io
import math
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib import resources
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from sensequant_assets.evaluation import charts
from sensequant_assets.evaluation.reports import (
    REPORT_TEMPLATE,
    Image,
    Section,
    Table,
    format_value,
    render_html,
    render_markdown,
    report_template,
    write_png,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _curves() -> dict[str, pd.Series]:
    index = pd.bdate_range("2023-01-02", periods=120, tz="Asia/Kolkata")
    rng = np.random.default_rng(7)
    return {
        "model": pd.Series(np.exp(np.cumsum(rng.normal(0.001, 0.01, 120))), index=index),
        "buy & hold": pd.Series(np.exp(np.cumsum(rng.normal(0.0, 0.012, 120))), index=index),
    }


def _heat_table() -> pd.DataFrame:
    return pd.DataFrame(
        [[0.51, -1.2, np.nan], [2.1, 0.0, -0.3]],
        index=pd.Index([10, 20], name="SMA length"),
        columns=pd.Index(["30/70", "25/75", "20/80"], name="RSI thresholds"),
    )


def _decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    """Each chart rendered once, shared by the tests below to keep the module fast."""
    return {
        "confusion": charts.confusion_matrix_png([[50, 10, 5], [8, 900, 12], [4, 9, 40]]),
        "equity": charts.equity_curves_png(_curves(), title="Equity"),
        "drawdown": charts.drawdown_png(_curves()),
        "heatmap": charts.heatmap_png(_heat_table(), title="Sharpe", value_label="Sharpe"),
        "bar": charts.bar_png(
            {"fold 1": 0.55, "fold 2": 0.48, "fold 3": float("nan"), "fold 4": -0.1},
            title="Accuracy by fold",
            value_label="accuracy",
            reference=0.5,
        ),
    }


# --------------------------------------------------------------------------- charts


@pytest.mark.parametrize(
    ("name", "width", "height"),
    [
        ("confusion", 550, 450),
        ("equity", 800, 450),
        ("drawdown", 800, 450),
    ],
)
def test_fixed_size_charts_are_decodable_pngs_of_the_documented_size(
    rendered: dict[str, bytes], name: str, width: int, height: int
) -> None:
    pixels = _decode(rendered[name])
    assert pixels.shape[:2] == (height, width)
    assert pixels.shape[2] in (3, 4)
    assert pixels[..., :3].std() > 0.05  # something was drawn, not a blank canvas


@pytest.mark.parametrize("name", ["heatmap", "bar"])
def test_size_adapted_charts_are_decodable_pngs(rendered: dict[str, bytes], name: str) -> None:
    pixels = _decode(rendered[name])
    height, width = pixels.shape[:2]
    assert 300 <= height <= 1400 and 500 <= width <= 1600
    assert pixels[..., :3].std() > 0.05


def test_rendering_is_deterministic(rendered: dict[str, bytes]) -> None:
    again = charts.heatmap_png(_heat_table(), title="Sharpe", value_label="Sharpe")
    assert again == rendered["heatmap"]
    assert b"matplotlib.org" not in again  # no Software tag with a URL in the PNG


def test_explicit_figsize_sets_pixel_size() -> None:
    png = charts.bar_png({"a": 1.0, "b": 2.0}, figsize=(4.0, 3.0))
    assert _decode(png).shape[:2] == (300, 400)


def test_heatmap_nan_cell_is_grey() -> None:
    table = pd.DataFrame([[1.0, np.nan]], columns=["a", "b"])
    pixels = _decode(charts.heatmap_png(table, figsize=(6.0, 3.0)))[..., :3]
    grey = np.isclose(pixels, 0xBF / 255, atol=0.01).all(axis=-1)
    assert grey.sum() > 1000


@pytest.mark.parametrize(
    ("call", "chart"),
    [
        (lambda: charts.confusion_matrix_png([]), "confusion_matrix_png"),
        (lambda: charts.equity_curves_png({}), "equity_curves_png"),
        (lambda: charts.equity_curves_png({"m": pd.Series(dtype=float)}), "equity_curves_png"),
        (lambda: charts.drawdown_png({}), "drawdown_png"),
        (lambda: charts.heatmap_png(pd.DataFrame()), "heatmap_png"),
        (lambda: charts.bar_png({}), "bar_png"),
    ],
)
def test_empty_input_is_rejected_naming_the_chart(call, chart: str) -> None:
    with pytest.raises(ValueError, match=chart):
        call()


def test_malformed_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="labels"):
        charts.confusion_matrix_png([[1, 2], [3, 4]])  # three default labels
    with pytest.raises(ValueError, match="square"):
        charts.confusion_matrix_png([[1, 2, 3]], labels=("a",))
    with pytest.raises(ValueError, match="strictly positive"):
        charts.drawdown_png({"cum returns": pd.Series([0.0, 0.1, -0.05])})
    with pytest.raises(ValueError, match="numbers"):
        charts.heatmap_png(pd.DataFrame({"a": ["x", "y"]}))


def test_charts_never_import_pyplot(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys
        import pandas as pd
        from sensequant_assets.evaluation import charts, reports
        series = pd.Series([1.0, 1.1, 0.9], index=pd.bdate_range("2024-01-01", periods=3))
        charts.confusion_matrix_png([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        charts.equity_curves_png({"a": series})
        charts.drawdown_png({"a": series})
        charts.heatmap_png(pd.DataFrame([[0.1, -0.2]]))
        charts.bar_png({"a": 1.0})
        reports.render_html("t", [reports.Section("s")])
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "MPLBACKEND"},
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (float("nan"), "—"),
        (np.float64("nan"), "—"),
        (pd.NA, "—"),
        (pd.NaT, "—"),
        (True, "yes"),
        (np.bool_(False), "no"),
        (1234567, "1,234,567"),
        (np.int64(-4200), "-4,200"),
        (0.543219, "0.5432"),
        (1.23456, "1.235"),
        (12.3456, "12.35"),
        (1234.56, "1,235"),
        (9.99996, "10.00"),
        (0.00123456, "0.001235"),
        (0.0000123456, "1.235e-05"),
        (0.0, "0"),
        (float("inf"), "∞"),
        (pd.Timestamp("2024-03-01"), "2024-03-01"),
        ("RELIANCE", "RELIANCE"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_format_value_digits_are_configurable() -> None:
    assert format_value(1.23456, digits=2) == "1.2"
    assert format_value(math.pi, digits=6) == "3.14159"


def test_malformed_report_parts_are_rejected() -> None:
    with pytest.raises(ValueError, match="row 2"):
        Table("t", ["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="not PNG"):
        Image("x", b"GIF89a")
    with pytest.raises(ValueError, match="not a PNG"):
        write_png(Path("x.png"), b"nope")


# --------------------------------------------------------------------------- HTML

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def report_parts(rendered: dict[str, bytes]) -> tuple[list[Section], dict[str, bytes]]:
    images = {
        "Confusion matrix": rendered["confusion"],
        f"Equity {HOSTILE}": rendered["equity"],
    }
    sections = [
        Section(
            heading="Summary & scope",
            paragraphs=["Walk-forward validation of the student model.", f"note {HOSTILE}"],
            tables=[
                Table(
                    caption="Per-fold metrics",
                    columns=["fold", "accuracy", "trades", "note"],
                    rows=[
                        [1, 0.543219, 1234, None],
                        [2, float("nan"), 87, HOSTILE],
                        [3, 0.5, 10, "a|b"],
                    ],
                )
            ],
        ),
        Section(
            heading="Charts",
            images=[Image(caption, png) for caption, png in images.items()],
        ),
    ]
    return sections, images


def test_html_is_self_contained(report_parts) -> None:
    sections, _ = report_parts
    page = render_html("Validation <summary>", sections)
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page, flags=re.I)
    assert references  # the images and the contents links
    for reference in references:
        assert reference.startswith(("data:image/png;base64,", "#")), reference
    assert not re.search(r"https?://", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_html_embeds_images_byte_for_byte(report_parts) -> None:
    sections, images = report_parts
    page = render_html("Report", sections)
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(data) for data in embedded] == list(images.values())


def test_html_escapes_caller_text_and_formats_values(report_parts) -> None:
    sections, _ = report_parts
    page = render_html("Validation <summary>", sections)
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") == 4  # paragraph, cell, figcaption, alt
    assert "<title>Validation &lt;summary&gt;</title>" in page
    assert "Summary &amp; scope" in page
    assert '<td class="num">0.5432</td>' in page
    assert '<td class="num">1,234</td>' in page
    assert "<td>—</td>" in page  # None in a text column
    assert '<td class="num">—</td>' in page  # NaN in a numeric column
    page.encode("utf-8")


def test_html_renders_an_empty_table() -> None:
    page = render_html("r", [Section("s", tables=[Table("empty", ["a", "b"], [])])])
    assert 'colspan="2"' in page and "no rows" in page


def test_html_autoescapes_every_piece_of_caller_text(rendered: dict[str, bytes]) -> None:
    hostile = "<script>alert(1)</script> buy & hold"
    section = Section(
        heading=hostile,
        paragraphs=[hostile],
        tables=[Table(hostile, [hostile], [[hostile]])],
        images=[Image(hostile, rendered["bar"])],
    )
    page = render_html(hostile, [section, Section("second")], formatter=str)
    assert "<script" not in page
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; buy &amp; hold"
    # title, h1, contents link, h2, paragraph, caption, header, cell, alt, figcaption
    assert page.count(escaped) == 10
    assert not re.search(r"&(?!amp;|lt;|gt;|#\d+;)", page)  # no bare & from caller text


def test_the_report_template_ships_as_package_data() -> None:
    package = resources.files("sensequant_assets.evaluation")
    template = package.joinpath("templates", REPORT_TEMPLATE)
    assert template.is_file()
    assert Path(report_template().filename).samefile(str(template))
    # a non-editable install ships only what pyproject's package-data names
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = declared["tool"]["setuptools"]["package-data"]["sensequant_assets.evaluation"]
    shipped = [f"templates/{t.name}" for t in package.joinpath("templates").iterdir()]
    assert shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


# --------------------------------------------------------------------------- markdown


def test_markdown_tables_and_images(report_parts) -> None:
    sections, _ = report_parts
    text = render_markdown(
        "Validation summary",
        sections,
        image_paths={"Confusion matrix": "charts/confusion matrix.png"},
    )
    lines = text.splitlines()
    assert lines[0] == "# Validation summary"
    assert "## Summary & scope" in lines  # Markdown read as a file: no entities
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 3  # header, alignment row, three data rows
    for line in table:
        unescaped_pipes = len(re.findall(r"(?<!\\)\|", line))
        assert unescaped_pipes == 4 + 1, line
    assert table[0] == "| fold | accuracy | trades | note |"
    assert table[1] == "| ---: | ---: | ---: | --- |"
    assert table[2] == "| 1 | 0.5432 | 1,234 | — |"
    assert table[4] == "| 3 | 0.5000 | 10 | a\\|b |"
    assert not re.search(r"(?<!\\)<script", text)  # tags are escaped: \<script>
    images = [line for line in lines if line.startswith("![")]
    assert images == ["![Confusion matrix](charts/confusion%20matrix.png)"]  # no path → omitted


def test_markdown_without_image_paths_omits_images(report_parts) -> None:
    sections, _ = report_parts
    text = render_markdown("r", sections)
    assert "![" not in text and "base64" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


# --------------------------------------------------------------------------- files


def test_write_report_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "nested" / "validation.html"
    assert write_report(target, "<p>first</p>") == target
    write_report(target, "<p>second ₹</p>")
    assert target.read_text(encoding="utf-8") == "<p>second ₹</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["validation.html"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_png_round_trips_and_cleans_up_on_failure(
    tmp_path: Path, rendered: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "charts" / "bar.png"
    write_png(target, rendered["bar"])
    assert target.read_bytes() == rendered["bar"]

    import sensequant_assets.atomic as atomic

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_png(target, rendered["confusion"])
    assert target.read_bytes() == rendered["bar"]  # old file intact
    assert sorted(p.name for p in target.parent.iterdir()) == ["bar.png"]  # no temp left
