"""PDF layout (issue 15): two columns read one after the other, table rows kept as lines with their
cells in order, whatever order the PDF's content stream writes them in; chunk offsets stay exact."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pypdfium2
from fpdf import FPDF

from store.chunking import Chunker
from store.parsing import ParseLimits, pdf, pdf_layout, pdf_pages

LIMITS = ParseLimits()
LEFT = (
    "The left column explains how the feed pump is primed. Open the suction valve fully, vent the casing "
    "through the upper plug until only water comes out, then close the plug and check the seal for drips. "
    "Start the pump from the local panel and watch the discharge gauge settle within ten seconds."
)
RIGHT = (
    "The right column covers the lubrication schedule. Grease the motor bearings every two thousand hours "
    "with lithium complex grease, wiping the old grease from the relief port, and record the quantity in "
    "the maintenance log together with the date and the running hours shown on the counter."
)
TITLE = "Pump Handbook, chapter 4: operation and care"
ROWS = [
    ("Bolt", "Size", "Torque (Nm)", "Thread"),
    ("Casing cover", "M16", "210", "coarse"),
    ("Bearing housing", "M12", "85", "fine"),
    ("Impeller nut", "M24", "450", "left-hand"),
]
COLUMNS_X = (15, 65, 105, 150)  # mm: the left edge of each table column


def two_columns(path: Path, *, across: bool) -> Path:
    """A page with a title over two columns of one paragraph each. ``across``: the content stream
    writes the lines across the page (left line 1, right line 1, left line 2...), as some office
    and DTP exports do; otherwise the left column, then the right one."""
    left, right = textwrap.wrap(LEFT, 48), textwrap.wrap(RIGHT, 48)
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.set_xy(15, 12)
    pdf.cell(180, 6, TITLE, align="C")
    cells = [(0, i, line) for i, line in enumerate(left)] + [(1, i, line) for i, line in enumerate(right)]
    for column, row, line in sorted(cells, key=lambda c: (c[1], c[0])) if across else cells:
        pdf.set_xy(15 + 95 * column, 25 + 5 * row)
        pdf.cell(85, 5, line)
    path.write_bytes(bytes(pdf.output()))
    return path


def ruled_table(path: Path, *, by_column: bool = False) -> Path:
    """A sentence, then a table ruled on every side, then a sentence. ``by_column``: the content
    stream writes the cells column by column (top to bottom, then the next column)."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.set_xy(15, 15)
    pdf.cell(0, 6, "Table 3 lists the torque values for the casing bolts.")
    cells = [(c, r, text) for r, row in enumerate(ROWS) for c, text in enumerate(row)]
    for column, row, text in sorted(cells) if by_column else cells:
        width = (COLUMNS_X[column + 1] if column + 1 < len(COLUMNS_X) else 195) - COLUMNS_X[column]
        pdf.set_xy(COLUMNS_X[column], 25 + 8 * row)
        pdf.cell(width, 8, text, border=1)
    pdf.set_xy(15, 25 + 8 * len(ROWS) + 6)
    pdf.cell(0, 6, "Tighten the bolts crosswise in three passes.")
    path.write_bytes(bytes(pdf.output()))
    return path


def layer_text(path: Path) -> str:
    with pdf_pages.text_layer(path) as read:
        text = read(0)
    assert text is not None
    return text


def flat(text: str) -> str:
    return " ".join(text.replace(pdf_layout.CELL, " ").split())


def test_two_columns_written_across_the_page_come_out_column_by_column(tmp_path):
    text = flat(layer_text(two_columns(tmp_path / "across.pdf", across=True)))
    assert text == flat(f"{TITLE} {LEFT} {RIGHT}")


def test_two_columns_written_column_by_column_keep_that_order(tmp_path):
    path = two_columns(tmp_path / "columns.pdf", across=False)
    assert flat(layer_text(path)) == flat(f"{TITLE} {LEFT} {RIGHT}")
    document = pypdfium2.PdfDocument(str(path))
    try:  # pdfium's order is already the reading order: its text is kept as it is
        textpage = document[0].get_textpage()
        assert pdf_layout.page_text(textpage) == textpage.get_text_range()
    finally:
        document.close()


def test_parsed_two_column_page_has_the_whole_left_column_before_the_right(tmp_path):
    parsed = pdf.parse(two_columns(tmp_path / "across.pdf", across=True), LIMITS)
    text = " ".join(block.text for block in parsed.blocks)
    assert " ".join(LEFT.split()) in text
    assert " ".join(RIGHT.split()) in text
    assert text.index("The left column") < text.index("The right column")


def test_table_rows_are_lines_with_their_cells_in_order(tmp_path):
    lines = layer_text(ruled_table(tmp_path / "table.pdf")).splitlines()
    assert [line.split(pdf_layout.CELL) for line in lines[1:-1]] == [list(row) for row in ROWS]
    assert lines[0] == "Table 3 lists the torque values for the casing bolts."
    assert lines[-1] == "Tighten the bolts crosswise in three passes."


def test_table_written_column_by_column_still_comes_out_row_by_row(tmp_path):
    lines = layer_text(ruled_table(tmp_path / "table.pdf", by_column=True)).splitlines()
    assert [line.split(pdf_layout.CELL) for line in lines[1:-1]] == [list(row) for row in ROWS]


def test_parsed_table_is_one_block_a_row_a_line(tmp_path):
    parsed = pdf.parse(ruled_table(tmp_path / "table.pdf"), LIMITS)
    texts = [block.text for block in parsed.blocks]
    assert "\n".join(" | ".join(row) for row in ROWS) in texts
    assert "Table 3 lists the torque values for the casing bolts." in texts
    assert "Tighten the bolts crosswise in three passes." in texts


def test_a_plain_paragraph_is_not_a_table(tmp_path):
    pdf_file = FPDF()
    pdf_file.add_page()
    pdf_file.set_font("Helvetica", size=11)
    pdf_file.multi_cell(0, 6, f"{LEFT} {RIGHT}")
    path = tmp_path / "plain.pdf"
    path.write_bytes(bytes(pdf_file.output()))
    text = layer_text(path)
    assert pdf_layout.CELL not in text
    assert flat(text) == flat(f"{LEFT} {RIGHT}")


def test_chunk_offsets_stay_exact_on_columns_and_tables(tmp_path):
    blocks = [
        *pdf.parse(two_columns(tmp_path / "across.pdf", across=True), LIMITS).blocks,
        *pdf.parse(ruled_table(tmp_path / "table.pdf"), LIMITS).blocks,
    ]
    text, chunks = Chunker(lambda texts: [len(t.split()) for t in texts], max_tokens=24, overlap=4).chunk(blocks)
    assert len(chunks) > 4
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert any("Casing cover | M16 | 210 | coarse" in c.text for c in chunks)
