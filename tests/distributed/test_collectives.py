"""The collectives in a real process group (2 gloo processes on this machine) give the one-process results."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from occseg.compnet.vmf import fit_vmf_mixture
from occseg.distributed.collectives import (
    all_gather_bytes,
    collect_files,
    first_error,
    gather_items,
    map_chunks,
    map_json,
)
from occseg.distributed.context import DistContext, session


def _data() -> torch.Tensor:
    return torch.randn(2000, 8, generator=torch.Generator().manual_seed(3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)}
    import os

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    with session("cpu", env=env) as ctx:
        assert ctx.active and ctx.backend == "gloo" and ctx.rank == rank
        fit = fit_vmf_mixture(_data(), 5, 20.0, seed=0, chunk=257, dist=ctx)  # 8 chunks over the ranks
        sums = torch.stack(map_chunks(ctx, 3, lambda i: torch.full((2,), float(i))))  # 3 chunks: one rank has 1
        # items of different sizes, rank r holding items r, r + world, ...
        local = [(i, [torch.arange(i + 1.0)], {"i": i}) for i in ctx.shard(5)]
        items = gather_items(ctx, 5, local)
        texts = all_gather_bytes(ctx, b"x" * rank)  # rank 0 sends nothing
        error = first_error(ctx, "bad" if rank == 1 else None)
        mine = Path(out).parent / f"file-{rank}.bin"
        mine.write_bytes(bytes(range(10 * rank, 10 * rank + 20)) * (rank + 1))  # 20 and 40 bytes
        files = collect_files(ctx, mine, lambda r: Path(out).parent / f"got-{r}.bin", chunk=7)  # 6 chunks
        squares = map_json(ctx, 5, lambda k: {"k": k * k})
        assert squares == [{"k": k * k} for k in range(5)]
        assert (files is None) != ctx.is_main
        if ctx.is_main:
            assert files[0] == mine and files[1].read_bytes() == bytes(range(10, 30)) * 2
            assert [m for _, m in items] == [{"i": i} for i in range(5)]
            assert all(torch.equal(t[0], torch.arange(i + 1.0)) for i, (t, _) in enumerate(items))
            assert texts == [b"x" * r for r in range(world)] and error == "bad"
            save_file({"means": fit.means, "weights": fit.weights, "sums": sums}, out)


def test_two_gloo_ranks_fit_the_one_process_vmf_mixture(tmp_path: Path) -> None:
    out = tmp_path / "two.safetensors"
    mp.spawn(_rank_main, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    two = load_file(out)
    one = fit_vmf_mixture(_data(), 5, 20.0, seed=0, chunk=257, dist=DistContext())
    assert torch.equal(two["means"], one.means) and torch.equal(two["weights"], one.weights)  # bitwise
    assert torch.equal(two["sums"], torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


def test_summed_gradients_in_one_process_add_every_parts_gradient() -> None:
    from occseg.distributed.collectives import rank_parts, summed_gradients

    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    parts = [torch.tensor([0.5, 1.0]), torch.tensor([3.0, -1.0]), torch.tensor([0.25, 0.0])]
    assert rank_parts(None, parts) == parts and rank_parts(DistContext(), [1, 2]) == [1, 2]
    losses = (((p * p * a).sum(), (a * a).sum()) for a in parts)  # d/dp = 2 p a
    logged = summed_gradients(None, [p], losses, 1)
    assert p.grad.dtype == torch.float32
    assert torch.equal(p.grad, 2 * p.detach() * (parts[0] + parts[1] + parts[2]))
    assert logged.dtype == torch.float64 and float(logged[0]) == 0.25 + 1 + 9 + 1 + 0.0625
