"""``mould train`` under ``torchrun --nproc-per-node 2`` on CPU (gloo): the replicas stay identical.

Each rank draws a different shard of every global batch
(``test_training.py::test_sampler_resumes_and_shards_the_same_stream``), so identical parameters at the end
mean the gradients were averaged at every step, for the generator (DistributedDataParallel) and the
discriminator (averaged by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import TINY, make_samples

# Two processes that each import torch and train: ~25 s of the default suite's ~4 min, so slow.
pytestmark = pytest.mark.slow


def test_two_cpu_processes_keep_identical_replicas(tmp_path):
    data = make_samples(tmp_path / "train", 8)
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mould.cli", "-q", "train", *TINY, "--steps", "3", "--adversarial-start", "1",
        "--data", str(data), "--out", str(run),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["environment"]["processes"] == 2
    assert info["samples_seen"] == 3 * 2 * 2  # steps x batch per process x processes
    assert info["replica_difference"] == 0.0
    assert (run / "checkpoints" / "step_000003.safetensors").is_file()
    assert sorted(path.name for path in run.iterdir() if path.name.startswith("metrics")) == ["metrics.csv"]


def test_a_time_limit_stops_every_rank_at_the_same_step(tmp_path):
    # Whatever step the limit falls on (it depends on the machine's speed), the ranks follow rank 0's clock:
    # the same learning rates, the same last step, identical replicas.
    data = make_samples(tmp_path / "train", 8)
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mould.cli", "-q", "train", *TINY, "--steps", "100000", "--time-limit", "3", "--warmup-steps", "1",
        "--adversarial-start", "0.5", "--data", str(data), "--out", str(run),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and 1 <= info["step"] < 100000 and info["elapsed_s"] >= 3
    assert info["replica_difference"] == 0.0
    assert (run / "checkpoints" / f"step_{info['step']:06d}.safetensors").is_file()


def _collectives(rank: int, port: int, out: str) -> None:
    import os

    import torch

    from mould.training import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    processes = distributed.start_processes("cpu")
    module = torch.nn.Linear(2, 1)
    with torch.no_grad():
        module.weight.fill_(float(rank))  # rank 1's weights are 1 more than rank 0's
        module.bias.zero_()
    module.weight.grad = torch.full_like(module.weight, rank + 1.0)  # 1 and 2: the mean is 1.5
    difference = distributed.replica_difference(processes, module)
    distributed.average_gradients(processes, module)
    flags = [distributed.any_rank(processes, rank == 1), distributed.any_rank(processes, False)]
    clock = distributed.main_value(processes, 10.0 + rank)
    distributed.stop_processes(processes)
    with open(f"{out}.{rank}", "w") as file:
        grad = module.weight.grad.tolist()
        json.dump({"difference": difference, "grad": grad, "flags": flags, "clock": clock}, file)


def test_collectives_see_every_rank(tmp_path):
    import socket

    import torch.multiprocessing

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    torch.multiprocessing.spawn(_collectives, args=(port, str(tmp_path / "out")), nprocs=2)
    for rank in (0, 1):
        result = json.loads((tmp_path / f"out.{rank}").read_text())
        assert result["difference"] == 1.0  # a replica difference is seen, not hidden
        assert result["grad"] == [[1.5, 1.5]]  # gradients averaged over the ranks
        assert result["flags"] == [True, False]  # a stop request on any rank reaches every rank
        assert result["clock"] == 10.0  # rank 0's clock on every rank
