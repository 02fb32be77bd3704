"""The collective operations occseg's statistics and outputs use; each is a no-op in one process.

Every result is combined in a fixed order that does not depend on the number of ranks (per-chunk partial sums
added in chunk order, per-item results put back in item order), so several ranks compute exactly what one
process computes. Payloads travel as tensors or as bytes (JSON, safetensors), never as pickles.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from occseg.distributed.context import DistContext

T = TypeVar("T")


def barrier(ctx: DistContext | None) -> None:
    """Wait for every rank."""
    if ctx is not None and ctx.active:
        import torch.distributed as dist

        dist.barrier()


def all_gather_bytes(ctx: DistContext | None, data: bytes) -> list[bytes]:
    """Every rank's ``data``, in rank order, on every rank (``[data]`` in one process)."""
    if ctx is None or not ctx.active:
        return [data]
    import torch.distributed as dist

    dev = ctx.comm_device
    size = torch.tensor([len(data)], dtype=torch.int64, device=dev)
    sizes = [torch.zeros_like(size) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, size)
    lengths = [int(s) for s in sizes]
    buf = torch.zeros(max(1, *lengths), dtype=torch.uint8)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    buf = buf.to(dev)
    out = [torch.empty_like(buf) for _ in range(ctx.world_size)]
    dist.all_gather(out, buf)
    return [o[:n].cpu().numpy().tobytes() for o, n in zip(out, lengths)]


def first_error(ctx: DistContext | None, error: str | None) -> str | None:
    """The first rank's error message (``None`` when no rank has one), so that every rank stops together."""
    texts = all_gather_bytes(ctx, (error or "").encode("utf-8"))
    return next((t.decode("utf-8") for t in texts if t), None)


def all_reduce_sum(ctx: DistContext | None, values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of every rank's ``values`` (a new tensor on their device; ``values`` itself in one
    process). With float64 sums of a few float32 values the result is exact, so the order of the ranks does not
    matter."""
    if ctx is None or not ctx.active:
        return values
    import torch.distributed as dist

    buf = values.to(ctx.comm_device, copy=True)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(values.device)


def rank_parts(dist: DistContext | None, parts: Sequence[T]) -> list[T]:
    """The parts this rank computes: every ``world_size``-th from its rank (all of them in one process)."""
    if dist is None or not dist.active:
        return list(parts)
    return [parts[j] for j in dist.shard(len(parts))]


def summed_gradients(
    dist: DistContext | None,
    params: Sequence[torch.nn.Parameter],
    losses: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_logged: int,
) -> torch.Tensor:
    """Set every parameter's ``grad`` to the sum, over the ``(loss, logged)`` pairs of every rank, of the loss's
    gradient, and return the sum of the ``logged`` values (``(n_logged,)``, float64, detached).

    Each rank adds its gradients in float64 and the float64 sums are added over the ranks (:func:`all_reduce_sum`)
    before the cast back: sums of a few float32 values are exact in float64, so the result does not depend on how
    the parts are dealt to the ranks."""
    params = list(params)
    sizes = [p.numel() for p in params]
    n = sum(sizes)
    acc = torch.zeros(n + n_logged, dtype=torch.float64, device=params[0].device)
    for loss, logged in losses:
        grads = torch.autograd.grad(loss, params)
        acc[:n] += torch.cat([g.reshape(-1) for g in grads]).double()
        acc[n:] += logged.detach().double()
    acc = all_reduce_sum(dist, acc)
    for p, g in zip(params, acc[:n].split(sizes)):
        p.grad = g.view_as(p).to(p.dtype)
    return acc[n:]


def map_chunks(ctx: DistContext | None, n_chunks: int, fn: Callable[[int], torch.Tensor]) -> list[torch.Tensor]:
    """``[fn(0), ..., fn(n_chunks - 1)]`` on every rank, each chunk computed by one rank (round robin).

    ``fn`` returns a 1-D tensor of the same length and dtype for every chunk (e.g. a chunk's partial sums, flat);
    adding the results in chunk order gives bitwise the sums one process adds chunk after chunk."""
    if ctx is None or not ctx.active:
        return [fn(i) for i in range(n_chunks)]
    import torch.distributed as dist

    mine = ctx.shard(n_chunks)
    local = [fn(i) for i in mine]
    if not local and n_chunks:  # fewer chunks than ranks: this rank sends padding shaped like chunk 0's result
        probe = fn(0)
        width, dtype, device = probe.shape[0], probe.dtype, probe.device
    else:
        width, dtype, device = local[0].shape[0], local[0].dtype, local[0].device
    per_rank = -(-n_chunks // ctx.world_size)
    block = torch.zeros((per_rank, width), dtype=dtype, device=ctx.comm_device)
    for j, vec in enumerate(local):
        block[j] = vec.to(ctx.comm_device)
    blocks = [torch.empty_like(block) for _ in range(ctx.world_size)]
    dist.all_gather(blocks, block)
    # chunk i was computed by rank i % world_size as its (i // world_size)-th
    return [blocks[i % ctx.world_size][i // ctx.world_size].to(device) for i in range(n_chunks)]


def pack_tensors(tensors: Sequence[torch.Tensor], meta: Any) -> bytes:
    """A list of CPU tensors and JSON metadata as bytes: 8-byte length, JSON, then safetensors."""
    head = json.dumps(meta).encode("utf-8")
    body = save_safetensors({str(i): t.contiguous().cpu() for i, t in enumerate(tensors)})
    return struct.pack("<Q", len(head)) + head + body


def unpack_tensors(data: bytes) -> tuple[list[torch.Tensor], Any]:
    """The inverse of :func:`pack_tensors`."""
    (n,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8 : 8 + n].decode("utf-8"))
    named = load_safetensors(data[8 + n :])
    return [named[str(i)] for i in range(len(named))], meta


def gather_items(
    ctx: DistContext | None, n_items: int, local: Sequence[tuple[int, Sequence[torch.Tensor], Any]]
) -> list[tuple[list[torch.Tensor], Any]]:
    """Every rank's ``(item index, tensors, JSON metadata)`` results, put back in item order on every rank (in one
    process: ``local`` itself, in order). Each of the ``n_items`` items must come from exactly one rank."""
    if ctx is None or not ctx.active:
        return [(list(t), m) for _, t, m in sorted(local, key=lambda r: r[0])]
    flat = [t for _, ts, _ in local for t in ts]
    meta = [[i, len(ts), m] for i, ts, m in local]
    out: list[tuple[list[torch.Tensor], Any] | None] = [None] * n_items
    for blob in all_gather_bytes(ctx, pack_tensors(flat, meta)):
        tensors, items = unpack_tensors(blob)
        pos = 0
        for i, k, m in items:
            out[i] = (tensors[pos : pos + k], m)
            pos += k
    missing = [i for i, r in enumerate(out) if r is None]
    if missing:
        raise RuntimeError(f"items {missing[:10]} came from no rank")
    return out  # type: ignore[return-value]


def map_json(ctx: DistContext | None, n_items: int, fn: Callable[[int], Any]) -> list[Any]:
    """``[fn(0), ..., fn(n_items - 1)]`` on every rank, item ``k`` computed by rank ``k % world_size``; the
    results (JSON values) travel as JSON text. In one process a plain loop. A ``ValueError`` / ``RuntimeError`` on
    a rank stops every rank with the first rank's message (as a ``RuntimeError``), so none waits for the others."""
    if ctx is None or not ctx.active:
        return [fn(k) for k in range(n_items)]
    error = None
    try:
        local = json.dumps([fn(k) for k in ctx.shard(n_items)]).encode("utf-8")
    except (ValueError, RuntimeError) as exc:
        error, local = f"{type(exc).__name__}: {exc}", b"[]"
    error = first_error(ctx, error)
    if error is not None:
        raise RuntimeError(error)
    out: list[Any] = [None] * n_items
    for rank, blob in enumerate(all_gather_bytes(ctx, local)):
        for j, value in enumerate(json.loads(blob)):
            out[rank + j * ctx.world_size] = value
    return out


#: the bytes a file travels in from a rank to rank 0 (:func:`collect_files`)
FILE_CHUNK = 1 << 24


def collect_files(
    ctx: DistContext | None, local: Path, received: Callable[[int], Path], *, chunk: int = FILE_CHUNK
) -> list[Path] | None:
    """Every rank's file ``local``, on rank 0: its own, and each other rank's copied in chunks of ``chunk``
    bytes to ``received(rank)`` (no shared file system needed; no file is held in memory whole). Rank 0 gets the
    paths in rank order, the other ranks ``None``."""
    if ctx is None or not ctx.active:
        return [Path(local)]
    import torch.distributed as dist

    size = torch.tensor([Path(local).stat().st_size], dtype=torch.int64, device=ctx.comm_device)
    sizes = [torch.zeros_like(size) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, size)
    paths: list[Path] = [Path(local)]
    for rank in range(1, ctx.world_size):
        n = int(sizes[rank])
        if ctx.rank == rank:
            with open(local, "rb") as fh:
                for start in range(0, n, chunk):
                    sent = torch.frombuffer(bytearray(fh.read(min(chunk, n - start))), dtype=torch.uint8)
                    dist.send(sent.to(ctx.comm_device), dst=0)
        elif ctx.is_main:
            paths.append(received(rank))
            with open(paths[-1], "wb") as fh:
                for start in range(0, n, chunk):
                    got = torch.empty(min(chunk, n - start), dtype=torch.uint8, device=ctx.comm_device)
                    dist.recv(got, src=rank)
                    fh.write(got.cpu().numpy().tobytes())
    return paths if ctx.is_main else None
