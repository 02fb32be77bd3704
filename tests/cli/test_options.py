"""Options shared by several commands (src/occseg/cli/options.py)."""

from __future__ import annotations

import click
import pytest
import torch

from occseg.cli.options import check_device


def test_device_values_are_checked_before_any_work():
    assert check_device(None, None, "cpu") == "cpu"
    with pytest.raises(click.BadParameter, match=r"'foo' is not a torch device \(cpu, cuda or cuda:N\)"):
        check_device(None, None, "foo")
    with pytest.raises(click.BadParameter, match=r"'meta': occseg runs on cpu or cuda"):
        check_device(None, None, "meta")
    if torch.cuda.is_available():
        assert check_device(None, None, "cuda") == "cuda"
        n = torch.cuda.device_count()
        with pytest.raises(click.BadParameter, match=f"this machine has {n} CUDA device"):
            check_device(None, None, f"cuda:{n}")
    else:
        with pytest.raises(click.BadParameter, match=r"'cuda:0': CUDA is not available on this machine"):
            check_device(None, None, "cuda:0")
