"""The rank context: torchrun's variables, the backend, the device and the shards."""

from __future__ import annotations

import pytest

from occseg.distributed.context import DistContext, backend_for, rank_device, start, torchrun_ranks


def test_one_process_without_torchrun() -> None:
    ctx = start("cpu", env={})
    assert ctx == DistContext() and ctx.is_main and not ctx.active
    assert ctx.shard(3) == [0, 1, 2]


def test_torchrun_variables() -> None:
    assert torchrun_ranks({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    assert torchrun_ranks({"RANK": "3", "WORLD_SIZE": "4"}) is None
    with pytest.raises(ValueError, match="RANK='x'"):
        torchrun_ranks({"RANK": "x", "WORLD_SIZE": "4", "LOCAL_RANK": "0"})


def test_shards_cover_every_item_once() -> None:
    shards = [DistContext(rank=r, world_size=3).shard(8) for r in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert DistContext(rank=2, world_size=3).shard(2) == []


def test_backend_and_device() -> None:
    assert backend_for("cpu") == "gloo" and backend_for(None) == "gloo"
    assert backend_for("cuda") == "nccl" and backend_for("cuda:1") == "nccl"
    nccl = DistContext(rank=1, world_size=2, local_rank=1, backend="nccl")
    assert rank_device("cuda", nccl) == "cuda:1"
    assert rank_device("cpu", DistContext(rank=1, world_size=2, backend="gloo")) == "cpu"
    assert str(nccl.comm_device) == "cuda:1"


def test_bad_rank_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 2 of 2"):
        DistContext(rank=2, world_size=2)
