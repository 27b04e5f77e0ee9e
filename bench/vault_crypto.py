"""What envelope encryption costs: sealing and opening 1 KiB record values.

Measured: the vault's recipe `vault.crypto.seal(data_key, value, ad=ad)` and
`open_sealed(data_key, blob, ad=ad)` on `n` distinct 1 KiB values, each with its own
record AD (`record_ad(...)`, built before timing: the caller holds it already; its own
cost is given in a note). The recipe checks the key, builds the `Aead` and adds its
version byte on every call. Goal: >= 80% of the floor's rate, for seal and for open
separately.

Floor: bare PyNaCl on the same values and ADs, `nacl.secret.Aead` built once outside the
loop, `aead.encrypt(value, ad)` (random nonce) and `aead.decrypt(nonce || ct, ad)`.

Recipe and floor alternate in slices of 500 values, so both see the same machine;
the garbage collector is paused while timing (as `timeit` does), after a warm-up
slice. Every result is checked after timing (the opened values equal the
originals). Best of the repeats is reported.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable

from nacl.secret import Aead

from bench.report import Goal, Result, best, spread
from vault.crypto import new_key, open_sealed, record_ad, seal

__all__ = ["bench_envelope"]

RECORD_SIZE = 1024
CHUNK = 500  # items per timed slice; recipe and floor slices alternate


def _paired_rates(
    ours: Callable[[int, int], None], floor: Callable[[int, int], None], n: int
) -> tuple[float, float]:
    """Rates of `ours` and `floor` over items 0..n-1, timed in alternating chunks.

    Alternating chunks of CHUNK items, rather than one long run each, lets both sides
    share whatever else the machine is doing; the GC is paused as `timeit` does.
    """
    t_ours = t_floor = 0.0
    gc.collect()
    gc.disable()
    try:
        for lo in range(0, n, CHUNK):
            hi = min(lo + CHUNK, n)
            t0 = time.perf_counter()
            floor(lo, hi)
            t1 = time.perf_counter()
            ours(lo, hi)
            t2 = time.perf_counter()
            t_floor += t1 - t0
            t_ours += t2 - t1
    finally:
        gc.enable()
    return n / t_ours, n / t_floor


def bench_envelope(*, n: int, repeats: int) -> list[Result]:
    key = new_key()
    values = [os.urandom(RECORD_SIZE) for _ in range(n)]
    record_ids = [f"rec_{i:08d}" for i in range(n)]
    ads = [record_ad(citizen_id="cit_bench", record_id=r, category="health.observations",
                     version=1) for r in record_ids]
    pairs = list(zip(values, ads, strict=True))
    aead = Aead(key)
    sealed: list[bytes] = [b""] * n
    bare: list[bytes] = [b""] * n
    opened: list[bytes] = [b""] * n
    bare_opened: list[bytes] = [b""] * n

    def seal_some(lo: int, hi: int) -> None:
        sealed[lo:hi] = [seal(key, v, ad=ad) for v, ad in pairs[lo:hi]]

    def bare_encrypt_some(lo: int, hi: int) -> None:
        bare[lo:hi] = [aead.encrypt(v, ad) for v, ad in pairs[lo:hi]]

    def open_some(lo: int, hi: int) -> None:
        opened[lo:hi] = [open_sealed(key, b, ad=ad)
                         for b, ad in zip(sealed[lo:hi], ads[lo:hi], strict=True)]

    def bare_decrypt_some(lo: int, hi: int) -> None:
        bare_opened[lo:hi] = [aead.decrypt(c, ad)
                              for c, ad in zip(bare[lo:hi], ads[lo:hi], strict=True)]

    def ad_all() -> None:
        for r in record_ids:
            record_ad(citizen_id="cit_bench", record_id=r, category="health.observations",
                      version=1)

    _paired_rates(seal_some, bare_encrypt_some, min(n, CHUNK))  # warm-up
    _paired_rates(open_some, bare_decrypt_some, min(n, CHUNK))
    seal_rates: list[float] = []
    enc_rates: list[float] = []
    open_rates: list[float] = []
    dec_rates: list[float] = []
    for _ in range(repeats):
        ours, floor = _paired_rates(seal_some, bare_encrypt_some, n)
        seal_rates.append(ours)
        enc_rates.append(floor)
        ours, floor = _paired_rates(open_some, bare_decrypt_some, n)
        open_rates.append(ours)
        dec_rates.append(floor)
    if opened != values or bare_opened != values:
        raise RuntimeError("a sealed value did not open to the original")
    if {len(b) for b in sealed} != {RECORD_SIZE + 41}:
        raise RuntimeError("a sealed 1 KiB value is not 1 + 24 + 1024 + 16 bytes")
    t0 = time.perf_counter()
    ad_all()
    ad_us = (time.perf_counter() - t0) / n * 1e6
    stat = f"best of {repeats}, {n:,} values"
    return [
        Result(
            name="seal 1 KiB record (XChaCha20-Poly1305)",
            unit="/s",
            measured=best(seal_rates, higher_is_better=True),
            floor=best(enc_rates, higher_is_better=True),
            floor_what="bare nacl Aead.encrypt",
            goal=Goal(">=", 0.8, "ratio"),
            stat=stat,
            spread=spread(seal_rates),
            notes=[f"building a record AD (JCS) costs {ad_us:.2f} us, not in the rate; "
                   f"floor spread {spread(enc_rates):.0%}"],
        ),
        Result(
            name="open 1 KiB record (XChaCha20-Poly1305)",
            unit="/s",
            measured=best(open_rates, higher_is_better=True),
            floor=best(dec_rates, higher_is_better=True),
            floor_what="bare nacl Aead.decrypt",
            goal=Goal(">=", 0.8, "ratio"),
            stat=stat,
            spread=spread(open_rates),
            notes=[f"floor spread {spread(dec_rates):.0%}"],
        ),
    ]
