"""Real fixture files for the parser tests, written into a directory the test gives.

Good documents carry one distinctive sentence per page or section so tests can check where
text lands; bad inputs are built the way they occur in the wild (a truncated download, an
encrypted PDF, a scan without a text layer, a zip bomb renamed .docx...).
"""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

from fpdf import FPDF

LOREM = (
    "Calibration drift is measured against the reference standard before every shift and "
    "recorded in the maintenance log together with the ambient temperature and humidity."
)


# One distinctive fact per page / section, so a test can check where a known passage lands
# (near-identical template sentences would test the embedder's ability to read numbers instead).
PAGE_FACTS = (
    "The inlet guide vanes must be inspected for erosion every five hundred operating hours.",
    "Lubricating oil above eighty-five degrees Celsius trips the journal bearing alarm.",
    "The exhaust diffuser is built from Inconel sheet welded in eight curved segments.",
    "Blade tip clearance is measured with a feeler gauge at the twelve o'clock position.",
    "Vibration above seven millimetres per second forces an automatic shutdown of the rotor.",
    "The fuel nozzles are cleaned ultrasonically in a citric acid bath for twenty minutes.",
)


def page_sentence(page: int) -> str:
    """The distinctive sentence printed on a given page (1-based) of ``make_pdf``'s output."""
    fact = PAGE_FACTS[page - 1] if page <= len(PAGE_FACTS) else f"Page {page} lists spare part number {page * 7919}."
    return f"{fact} (marker{page:03d})"


def make_pdf(path: Path, pages: int = 3, *, title: str | None = "Turbine Manual", outline: bool = False) -> Path:
    """A text PDF: per page a heading, a long paragraph, the page's distinctive sentence."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    if title:
        pdf.set_title(title)
    for page in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=16)
        heading = f"Chapter {page}"
        if outline:
            pdf.start_section(heading, level=0)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, LOREM + " " + LOREM, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
        if outline:
            pdf.start_section(f"Findings {page}", level=1)
            pdf.set_font("Helvetica", size=13)
            pdf.cell(0, 8, f"Findings {page}", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, page_sentence(page), new_x="LMARGIN", new_y="NEXT")
    return _save_pdf(pdf, path)


def make_pdf_lines(path: Path, pages: list[list[str]]) -> Path:
    """A text PDF with exactly these lines on each page (a line per cell: hyphenation and headers as given)."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pdf.set_font("Helvetica", size=11)
    for lines in pages:
        pdf.add_page()
        for line in lines:
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    return _save_pdf(pdf, path)


def with_page_labels(path: Path, ranges: list[tuple[int, str, str, int]] | None = None, *, raw=None) -> Path:
    """Give the PDF at ``path`` page labels, in place: ``ranges`` of (first page index, style, prefix,
    start) as pypdf's ``set_page_label`` takes them ("/r" roman, "/D" decimal); or ``raw``, a
    ``/PageLabels`` number tree written as it is (to make malformed ones)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject

    writer = PdfWriter(clone_from=PdfReader(path))
    last = len(writer.pages) - 1
    ranges = ranges or []
    for i, (first, style, prefix, start) in enumerate(ranges):
        end = ranges[i + 1][0] - 1 if i + 1 < len(ranges) else last
        writer.set_page_label(first, end, style=style or None, prefix=prefix or None, start=start)
    if raw is not None:
        writer._root_object[NameObject("/PageLabels")] = raw
    with path.open("wb") as out:
        writer.write(out)
    return path


def make_scan_of(pdf_path: Path, out: Path, *, pages: list[int] | None = None, dpi: int = 150) -> Path:
    """``pdf_path`` "printed and scanned": the chosen pages (1-based; default all) become images with
    no text layer, the others keep theirs (a mixed PDF). Rendered with pypdfium2, rebuilt with pypdf."""
    import io

    import pypdfium2
    from PIL import Image
    from pypdf import PdfReader, PdfWriter

    source = pypdfium2.PdfDocument(str(pdf_path))
    original = PdfReader(pdf_path)
    writer = PdfWriter()
    for index in range(len(source)):
        if pages is not None and index + 1 not in pages:
            writer.add_page(original.pages[index])
            continue
        page = source[index]
        width, height = page.get_size()
        image: Image.Image = page.render(scale=dpi / 72, grayscale=True).to_pil()
        page.close()
        scanned = io.BytesIO()
        image.save(scanned, format="PDF", resolution=dpi)
        writer.add_page(PdfReader(scanned).pages[0])
        writer.pages[-1].scale_to(width, height)
    source.close()
    with out.open("wb") as handle:
        writer.write(handle)
    return out


def make_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF whose pages hold only a drawn rectangle and an image: no text layer at all."""
    from PIL import Image

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.set_fill_color(200, 200, 200)
        pdf.rect(20, 20, 120, 60, style="F")
        pdf.image(Image.new("RGB", (64, 64), (90, 90, 90)), x=20, y=100, w=60)
    return _save_pdf(pdf, path)


def make_encrypted_pdf(path: Path, user_password: str = "s3cret", algorithm: str = "RC4-128") -> Path:
    """A text PDF encrypted with pypdf (RC4-128 by default; "AES-256" needs ``cryptography``).

    With ``user_password=""`` it opens without a password (only the owner password is set).
    """
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_suffix(".plain.pdf"), pages=2)
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=user_password, owner_password="owner-pw", algorithm=algorithm)
    with path.open("wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path


def make_corrupt_pdf(path: Path) -> Path:
    """A PDF header followed by garbage: what a broken download or a mislabelled file looks like."""
    rng = random.Random(7)
    garbage = bytes(rng.randrange(256) for _ in range(4096))
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog" + garbage)
    return path


def _save_pdf(pdf: FPDF, path: Path) -> Path:
    path.write_bytes(bytes(pdf.output()))
    return path


SECTION_FACTS = {
    "Installation": "Anchor the base frame with four chemical bolts before grouting.",
    "On Linux": "Load the usbserial driver before starting the controller daemon.",
    "Kernel modules": "Blacklist the conflicting ftdi_sio module in modprobe.d.",
    "On Windows": "Install the signed COM port driver from the vendor USB stick.",
    "Maintenance": "Replace the impeller wear ring when its clearance exceeds 0.8 millimetres.",
}


def section_sentence(*section: str) -> str:
    """The distinctive sentence written under a heading path in the DOCX/Markdown/HTML fixtures."""
    return SECTION_FACTS.get(section[-1], "Only " + " / ".join(section) + " explains the sealing procedure.")


# The heading tree the DOCX, Markdown and HTML fixtures share: (level, title).
HEADINGS: tuple[tuple[int, str], ...] = (
    (1, "Installation"),
    (2, "On Linux"),
    (3, "Kernel modules"),
    (2, "On Windows"),
    (1, "Maintenance"),
)
TABLE = (("Part", "Torque (Nm)"), ("Flange bolt", "45"), ("Cover screw", "12"))


def heading_paths() -> list[tuple[str, ...]]:
    """The section path of every heading in ``HEADINGS``, in order."""
    paths, stack = [], []
    for level, title in HEADINGS:
        del stack[level - 1 :]
        stack.append(title)
        paths.append(tuple(stack))
    return paths


def make_docx(path: Path, *, title: str = "Pump Handbook") -> Path:
    """A Word document: a Title, nested Heading 1-3 sections each with a sentence, a table."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    document.add_paragraph("Read this handbook   before\tthe first start.")
    for (level, heading), section in zip(HEADINGS, heading_paths()):
        document.add_heading(heading, level=level)
        document.add_paragraph(section_sentence(*section))
        if heading == "Maintenance":
            table = document.add_table(rows=len(TABLE), cols=len(TABLE[0]))
            for row, values in zip(table.rows, TABLE):
                for cell, value in zip(row.cells, values):
                    cell.text = value
            document.add_paragraph("After the table comes the closing paragraph.")
    document.save(str(path))
    return path


def make_docx_zip_bomb(path: Path, megabytes: int = 30) -> Path:
    """A zip named .docx with a real word/document.xml and one member of zeros (ratio ~1000)."""
    minimal = make_docx(path.with_suffix(".min.docx"))
    with zipfile.ZipFile(minimal) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in source.infolist():
            bomb.writestr(member, source.read(member))
        with bomb.open("word/media/padding.bin", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(megabytes):
                member.write(chunk)
    minimal.unlink()
    return path


def make_zip_without_document(path: Path) -> Path:
    """A valid zip named .docx that lacks word/document.xml."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a word document")
    return path


def make_markdown(path: Path) -> Path:
    """Markdown with front matter, nested headings, emphasis, a link, a list, code and a table."""
    lines = ["---", "title: Front matter title", "---", "", "# Pump Handbook", ""]
    lines += ["Read *this* handbook before the **first** start; see [the site](https://x.test).", ""]
    for (level, heading), section in zip(HEADINGS, heading_paths()):
        lines += ["#" * (level + 1) + " " + heading, "", section_sentence(*section), ""]
    lines += ["- first item", "- second `item`", ""]
    lines += ["```python", "def torque(x):", "    return  x * 2", "```", ""]
    lines += ["| " + " | ".join(row) + " |" for row in TABLE[:1]] + ["|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in TABLE[1:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def html_page(body: str, *, title: str = "Pump Handbook", head: str = "") -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>body {{ color: red }}</style>{head}</head>"
        f"<body>{body}</body></html>"
    )


def make_html(path: Path) -> Path:
    """A page with site chrome (nav, header, footer, aside, script) around a <main> with headings."""
    sections = "".join(
        f"<h{level + 1}>{heading}<a class='headerlink' href='#x'>\u00b6</a></h{level + 1}>"
        f"<p>{section_sentence(*section)}</p>"
        for (level, heading), section in zip(HEADINGS, heading_paths())
    )
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in TABLE)
    body = (
        "<header><div>SITE BANNER</div></header><nav><a href='/'>NAVIGATION LINK</a></nav>"
        "<script>var tracking = 'SCRIPT TEXT';</script>"
        "<main><h1>Pump Handbook</h1><p>Read this   handbook <b>before</b>\n the first start.</p>"
        f"{sections}<table>{rows}</table><pre>def torque(x):\n    return  x * 2</pre>"
        "<form><label>FORM LABEL</label></form><noscript>NOSCRIPT TEXT</noscript></main>"
        "<aside>ASIDE TEXT</aside><footer>FOOTER TEXT</footer>"
    )
    path.write_text(html_page(body), encoding="utf-8")
    return path


def make_sphinx_html(path: Path) -> Path:
    """A page laid out like Sphinx output (the Python docs): related bars, sidebar, footer."""
    body = (
        "<div class='related' role='navigation'><ul><li>RELATED BAR</li></ul></div>"
        "<div class='document'><div class='documentwrapper'><div class='bodywrapper'>"
        "<div class='body' role='main'><section id='os'>"
        "<h1>os \u2014 Miscellaneous interfaces<a class='headerlink' href='#os'>\u00b6</a></h1>"
        "<p>This module provides a portable way of using operating system dependent functionality.</p>"
        "<section id='files'><h2>Files<a class='headerlink' href='#files'>\u00b6</a></h2>"
        "<dl><dt>os.open(path)</dt><dd><p>Open the file path.</p></dd></dl></section></section>"
        "</div></div></div><div class='sphinxsidebar' role='navigation'>SIDEBAR TEXT</div></div>"
        "<div class='footer'>SPHINX FOOTER</div>"
    )
    path.write_text(html_page(body, title="os \u2014 Python docs"), encoding="utf-8")
    return path


def make_nested_html(path: Path, depth: int = 5000) -> Path:
    """HTML nested ``depth`` divs deep around one sentence."""
    path.write_text(html_page("<div>" * depth + "Deep sentence." + "</div>" * depth), encoding="utf-8")
    return path


def make_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Text written in an encoding (Python's "utf-16" codec writes a BOM)."""
    path.write_bytes(text.encode(encoding))
    return path


def make_binary(path: Path) -> Path:
    """Binary content (a PNG signature and bytes with NULs) under whatever name is given."""
    rng = random.Random(3)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(2048)))
    return path


def make_random_bytes(path: Path, seed: int, size: int = 2048) -> Path:
    rng = random.Random(seed)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(size)))
    return path


def mutate(data: bytes, seed: int, flips: int = 20) -> bytes:
    """Overwrite a few random bytes, and sometimes truncate: a damaged copy of a good file."""
    rng = random.Random(seed)
    buffer = bytearray(data)
    for _ in range(flips):
        buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    if rng.random() < 0.3:
        del buffer[rng.randrange(len(buffer) // 2, len(buffer)) :]
    return bytes(buffer)


def make_html_encoded(path: Path, text: str, encoding: str, *, meta: bool = True) -> Path:
    """A small page in a legacy encoding, declaring it in <meta charset> or not at all."""
    head = f"<meta charset='{encoding}'>" if meta else ""
    page = f"<html><head>{head}<title>Encoded</title></head><body><p>{text}</p></body></html>"
    path.write_bytes(page.encode(encoding))
    return path


def make_article_page(path: Path) -> Path:
    """No <main>: one <article> among body text that is not part of it."""
    body = (
        "<div>BODY TEASER outside the article</div><article><header><h1>Article title</h1></header>"
        "<p>The article body sentence.</p><footer>ARTICLE FOOTER</footer></article>"
    )
    path.write_text(html_page(body, title=""), encoding="utf-8")
    return path


def make_legacy_doc(path: Path) -> Path:
    """The signature of an OLE2 compound file (a Word 97-2003 .doc) under a .docx name."""
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Word.Document.8" * 10)
    return path


def make_undecodable_text(path: Path) -> Path:
    """Words around every byte from 0x80 to 0xff: not UTF-8, and no encoding explains them."""
    path.write_bytes((b"Pump report " + bytes(range(0x80, 0x100))) * 3)
    return path


def damage_docx_part(source: Path, path: Path, seed: int) -> Path:
    """A copy of a DOCX, still a valid zip, with its document, styles or package XML damaged."""
    victim = ("word/document.xml", "word/styles.xml", "[Content_Types].xml", "_rels/.rels")[seed % 4]
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for member in original.infolist():
            data = original.read(member)
            if member.filename == victim:
                data = mutate(data, seed, flips=(1, 5, 40)[seed % 3])
            copy.writestr(member, data)
    return path
