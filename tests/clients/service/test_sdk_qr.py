"""QR codes of the authorization URL: the PNG, decoded here with zlib alone, holds
exactly the QR symbol of that URL (medium error correction, the asked scale and quiet
zone), and the SVG is a standalone SVG document of the same symbol."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from xml.etree import ElementTree

import segno

from clients.service import PendingAuthorization

URL = ("https://vault.example.gov/oauth/authorize?client_id=svc_08EuHNReCrOKJF4OfU9T2w"
       "&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3AfyLe8MNoc0T3sEWk13C6fDDiEE")


def pending(url: str = URL) -> PendingAuthorization:
    return PendingAuthorization(url=url, state="s" * 43, code_verifier="v" * 43,
                                redirect_uri="https://badges.example.gov/cb",
                                request_uri="urn:x", issuer="https://vault.example.gov",
                                expires_at=datetime(2026, 1, 1, tzinfo=UTC))


def png_pixels(png: bytes) -> list[list[int]]:
    """Greyscale or palette PNG rows as 0 (dark) / 1 (light), via zlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, palette = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", data[:10])
        elif kind == b"PLTE":
            palette = [data[i:i + 3] for i in range(0, len(data), 3)]
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = (width * depth + 7) // 8
    rows, previous = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        assert line[0] in (0, 2), "filters other than None/Up are not needed by segno"
        row = bytearray(line[1:])
        if line[0] == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        previous = row
        bits = "".join(f"{b:08b}" for b in row)
        values = [int(bits[i * depth:(i + 1) * depth], 2) for i in range(width)]
        if palette is not None:
            values = [1 if palette[v] == b"\xff\xff\xff" else 0 for v in values]
        else:
            values = [1 if v else 0 for v in values]
        rows.append(values)
    assert colour in (0, 3)
    return rows


def modules(url: str, border: int) -> list[list[int]]:
    symbol = segno.make(url, error="m", micro=False)
    assert symbol.error == "M"
    size = len(symbol.matrix)
    light = [[1] * (size + 2 * border) for _ in range(border)]
    body = [[1] * border + [0 if m else 1 for m in row] + [1] * border
            for row in symbol.matrix]
    return light + body + [row[:] for row in light]


def test_the_png_is_the_urls_symbol_at_the_asked_scale() -> None:
    for scale, border in ((1, 4), (3, 2)):
        pixels = png_pixels(pending().qr_png(scale=scale, border=border))
        expected = modules(URL, border)
        assert len(pixels) == len(expected) * scale
        sampled = [row[::scale] for row in pixels[::scale]]
        assert sampled == expected


def test_another_url_is_another_picture() -> None:
    assert png_pixels(pending().qr_png(scale=1)) != \
        png_pixels(pending(URL.replace("svc_08", "svc_09")).qr_png(scale=1))


def test_the_svg_is_a_standalone_document_of_the_same_size() -> None:
    svg = pending().qr_svg(scale=2, border=4)
    assert not svg.startswith("<?xml")  # can be inlined in HTML as it is
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    side = (len(segno.make(URL, error="m").matrix) + 8) * 2
    assert (root.get("width"), root.get("height")) == (str(side), str(side))
    assert "Citizen Data Vault" in "".join(root.itertext())
    assert pending(URL + "x").qr_svg() != pending().qr_svg()
