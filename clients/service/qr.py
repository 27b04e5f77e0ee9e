"""QR codes of the authorization URL, for a citizen who approves on another device.

A service shows the code at its desk or on a laptop screen; the citizen scans it with the
phone that holds their passkey. segno draws both formats in pure Python (no Pillow).
"""

from __future__ import annotations

import io

import segno

__all__ = ["qr_png", "qr_svg"]

#: Medium error correction: still reads on a smudged screen, small enough for long URLs.
_ERROR_LEVEL = "m"


def _code(url: str) -> segno.QRCode:
    return segno.make(url, error=_ERROR_LEVEL, micro=False)


def qr_svg(url: str, *, scale: int = 4, border: int = 4,
           title: str = "Scan to answer in your Citizen Data Vault") -> str:
    """An SVG document (no XML declaration, so it can also be inlined in HTML)."""
    out = io.BytesIO()
    _code(url).save(out, kind="svg", scale=scale, border=border, xmldecl=False, nl=False,
                    title=title)
    return out.getvalue().decode("utf-8")


def qr_png(url: str, *, scale: int = 4, border: int = 4) -> bytes:
    """A PNG image; `scale` is the size of one module in pixels."""
    out = io.BytesIO()
    _code(url).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()
