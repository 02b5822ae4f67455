"""The page toolkit: whole-or-nothing writes, escaped tables, counts formatted as counts."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.pages.html import format_cell, table, write_page


def test_a_failed_write_leaves_neither_file(tmp_path):
    out, side = tmp_path / "page.html", tmp_path / "page.csv"

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_page(out, "<p>page</p>", side, broken)
    assert list(tmp_path.iterdir()) == []
    write_page(out, "<p>page</p>", side, lambda path: path.write_text("a,b"))
    assert out.read_text() == "<p>page</p>" and side.read_text() == "a,b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.csv", "page.html"]


def test_tables_escape_their_cells_and_format_counts():
    html = table(pd.DataFrame({"source": ["<script>x</script>"], "leads": [1234.0]}))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "1,234" in html
    assert format_cell(float("nan")) == "–" and format_cell(0.25, "pct") == "25.0%"
