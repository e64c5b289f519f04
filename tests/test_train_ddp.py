"""``mould train`` under ``torchrun --nproc-per-node 2`` on CPU (gloo): the replicas stay identical.

Each rank draws a different shard of every global batch (``test_sampler_resumes_and_shards_the_same_stream``),
so identical parameters at the end mean the gradients were averaged at every step, for the generator
(DistributedDataParallel) and the discriminator (averaged by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys

from test_train import TINY, make_samples


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
