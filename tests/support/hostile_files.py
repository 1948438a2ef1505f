"""Small uploads that cost a lot to parse: the cases an attacker sent to the ingest service."""

from __future__ import annotations

import io
import zipfile
import zlib

from tests.support.documents import docx_with, pdf_of

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _replace_part(docx: bytes, name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            data = content if info.filename == name else source.read(info)
            target.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def docx_paragraph_bomb(paragraphs: int = 1_000_000) -> bytes:
    """~100 KB that inflates to ~34 MB of XML: a million one-letter paragraphs."""
    body = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * paragraphs
    xml = (
        (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{_W}">'
            "<w:body>"
        ).encode()
        + body
        + b"</w:body></w:document>"
    )
    return _replace_part(docx_with("t", ["p"], [["a"]]), "word/document.xml", xml)


def docx_billion_laughs() -> bytes:
    """A .docx whose document.xml nests entities (XML's "billion laughs")."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"<!DOCTYPE w:document [{''.join(entities)}]>"
        f'<w:document xmlns:w="{_W}"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p>'
        "</w:body></w:document>"
    ).encode()
    return _replace_part(docx_with("t", ["p"], [["a"]]), "word/document.xml", xml)


TEXT_OP = b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n"
# Shows a blank: as slow to interpret as text (~2.5 s per MB here), yet no characters come
# out, so only the time limit can stop it (not MAX_DOCUMENT_CHARS, whatever the CPU speed).
BLANK_TEXT_OP = b"BT /F1 12 Tf 72 720 Td ( ) Tj ET\n"


def pdf_heavy_content(
    content_bytes: int = 5 * 1024 * 1024, pages: int = 1, op: bytes = TEXT_OP
) -> bytes:
    """A PDF of a few KB whose pages' compressed content streams each inflate to
    `content_bytes` of operators (one page of text: the 15 KB file that took 5.9 s)."""
    stream = zlib.compress(op * (content_bytes // len(op)), 9)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream"
        )
    return pdf_of(objects)
