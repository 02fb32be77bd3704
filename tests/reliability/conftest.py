"""The reliability corpus's workspace: valid inputs every bad-input test starts from (built once, copied per test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.reliability.corpus import Workspace, make_workspace


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory) -> Workspace:
    return make_workspace(tmp_path_factory.mktemp("reliability") / "ws")


@pytest.fixture
def ws(_workspace_template: Workspace, tmp_path: Path) -> Workspace:
    """A fresh copy of the workspace for one test (a test may damage its inputs on purpose)."""
    root = tmp_path / "ws"
    shutil.copytree(_workspace_template.root, root, symlinks=True)
    t = _workspace_template

    def moved(p: Path) -> Path:
        return root / p.relative_to(t.root)

    return Workspace(root, *(moved(getattr(t, f)) for f in Workspace.__dataclass_fields__ if f != "root"))
