"""plot_run writes a real PNG with something drawn on it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from polysaga_tools.plot import RunSample, plot_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def distinct_pixel_rows(data: bytes) -> int:
    """How many different scanlines the decompressed image has: a blank image has one."""
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    width, height = png_size(data)
    raw = zlib.decompress(b"".join(chunks))
    stride = len(raw) // height
    assert stride > width  # one filter byte plus at least one byte per pixel
    return len({raw[i * stride + 1 : (i + 1) * stride] for i in range(height)})


def samples() -> list[RunSample]:
    return [
        RunSample(
            t_s=float(t),
            completed_per_s=10.0 + t,
            saga_latency_p50_ms=None if t == 3 else 40.0 + t,
            saga_latency_p99_ms=None if t == 3 else 200.0 + 5 * t,
            lag_p50_ms=5.0,
            lag_p99_ms=30.0 + t,
        )
        for t in range(1, 11)
    ]


def test_plot_run_writes_a_png_with_three_panels_drawn(tmp_path: Path) -> None:
    path = tmp_path / "run.png"
    plot_run(samples(), path, "demo: 100 orders")
    data = path.read_bytes()
    width, height = png_size(data)
    assert (width, height) == (900, 800)
    assert distinct_pixel_rows(data) > 100  # axes, lines, labels: far from a blank page


def test_a_single_sample_of_nothing_observed_still_plots(tmp_path: Path) -> None:
    path = tmp_path / "one.png"
    plot_run([RunSample(0.5, 0.0, None, None, None, None)], path, "empty run")
    assert png_size(path.read_bytes()) == (900, 800)


def test_no_samples_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no samples"):
        plot_run([], tmp_path / "none.png", "nothing")
    assert not (tmp_path / "none.png").exists()
