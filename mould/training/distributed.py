"""Processes of a training run: one by default, several under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node K`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` and
the rendezvous address; :func:`start_processes` joins the group (NCCL on CUDA, gloo on CPU). Rank 0 alone
writes files; every collective below is called by all ranks in the same order.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mould.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processes:
    """Where this process stands in the run.

    Attributes:
        rank: 0 to world_size - 1; rank 0 writes the run folder.
        world_size: the number of training processes.
        local_rank, local_size: the same on this machine (picks the GPU; divides the CPU threads).
        device: this process's torch device.
    """

    rank: int
    world_size: int
    local_rank: int
    local_size: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_processes(device: str = "auto") -> Processes:
    """Join the torchrun group if there is one and pick this process's device.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Raises:
        InputError: ``cuda`` asked for where there is none, or fewer GPUs than local processes.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise InputError("--device cuda: no CUDA device is available")
    use_cuda = device == "cuda" or (device == "auto" and cuda)
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise InputError(
                f"--nproc-per-node: {local_size} processes but {torch.cuda.device_count()} GPUs on this machine"
            )
        torch.cuda.set_device(local_rank)
        chosen = torch.device("cuda", local_rank)
    else:
        chosen = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Processes(rank, world_size, local_rank, local_size, chosen)


def stop_processes(processes: Processes) -> None:
    if processes.distributed and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(processes: Processes, value) -> list:
    """``value`` of every rank, by rank (a plain list with one process)."""
    if not processes.distributed:
        return [value]
    values = [None] * processes.world_size
    dist.all_gather_object(values, value)
    return values


def any_rank(processes: Processes, flag: bool) -> bool:
    """True on every rank if ``flag`` is True on any (so all ranks stop at the same step)."""
    if not processes.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=processes.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def main_value(processes: Processes, value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. its clock, so that every rank follows the same schedule)."""
    if not processes.distributed:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=processes.device)
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def barrier(processes: Processes) -> None:
    if processes.distributed:
        dist.barrier()


def average_gradients(processes: Processes, module: torch.nn.Module) -> None:
    """Average ``module``'s gradients over the ranks (for the discriminator, which is not wrapped in
    DistributedDataParallel because its loss calls it twice, on real and on predicted inputs, per backward)."""
    if not processes.distributed:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= processes.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_buffers(processes: Processes, module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank."""
    if processes.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)


def replica_difference(processes: Processes, module: torch.nn.Module) -> float:
    """Largest absolute difference between any rank's parameters and rank 0's (0 with one process).

    Every rank gathers all parameters of all ranks, so call it rarely (at the end of a run).
    """
    if not processes.distributed:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).float() for p in module.parameters()])
    copies = [torch.empty_like(flat) for _ in range(processes.world_size)]
    dist.all_gather(copies, flat)
    return max(float((copy - copies[0]).abs().max()) for copy in copies)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_threads(processes: Processes, requested: int | None) -> int:
    """torch threads for this process: ``requested``, or its share of the machine's cores less one (left to
    the data workers), at least 1.

    Measured on a shared 2-core machine: with both cores busy with other jobs, 2 torch threads ran the
    small model 5-10x slower than 1 (OpenMP threads wait on each other); a thread count below the cores
    keeps that from happening.
    """
    if requested is not None:
        return requested
    return max(1, _cores() // max(processes.local_size, 1) - 1)


def loader_workers(processes: Processes, requested: int | None) -> int:
    """DataLoader workers for this process: ``requested``, or its share of the cores less one, 1 to 8."""
    if requested is not None:
        return requested
    return min(8, max(1, _cores() // max(processes.local_size, 1) - 1))
