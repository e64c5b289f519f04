"""Compare the CPU time a sample of two versions of the generator, interleaved so that machine drift cancels.

Timing two versions by whole ``mould synth`` runs, one after the other, cannot resolve a few per cent on a
shared or virtual machine whose speed drifts by 10-20 % within minutes. Here two long-lived worker processes,
one per version (each a Python interpreter with its own ``mould`` installed, e.g. two git worktrees' virtual
environments), generate the same samples in turn, alternating which goes first (ABBA), on one thread; each
sample's CPU time is taken inside its worker, start-up excluded. The minimum over repeats of each sample is
the figure least disturbed by other load. A null comparison (one interpreter against itself) reads within
about 1 % (docs/synthetic-data.md, "Speed").

Usage::

    python tools/generator_ab.py --base OLD/.venv/bin/python --new NEW/.venv/bin/python
        [--samples 30] [--repeats 3] [--seed 31337] [--resolution 256]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

WORKER = """
import sys, time, torch
torch.set_num_threads(1)
from mould.datasets.synthetic import SynthConfig, generate_sample
seed, config = int(sys.argv[1]), SynthConfig(resolution=int(sys.argv[2]))
generate_sample(0, seed, config)  # warm: the bank, the atlas, the compiled z-buffer
print("@@ ready", flush=True)
for line in sys.stdin:
    start = time.process_time()
    generate_sample(int(line), seed, config)
    print("@@", time.process_time() - start, flush=True)
"""
"""The worker's program: its answers are the stdout lines that start with "@@" (anything else a library prints
is skipped)."""


class Worker:
    """One version's generator in its own process, generating samples on request."""

    def __init__(self, python: str, seed: int, resolution: int) -> None:
        self.process = subprocess.Popen(
            [python, "-c", WORKER, str(seed), str(resolution)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._answer() != "ready":
            raise RuntimeError(f"{python}: the generator did not start (exit status {self.process.wait()})")

    def _answer(self) -> str:
        """The worker's next answer ("" when it has stopped)."""
        for line in self.process.stdout:
            if line.startswith("@@ "):
                return line[3:].strip()
        return ""

    def seconds(self, index: int) -> float:
        """CPU seconds to generate sample ``index``."""
        self.process.stdin.write(f"{index}\n")
        self.process.stdin.flush()
        answer = self._answer()
        if not answer:
            raise RuntimeError(f"the worker stopped at sample {index} (exit status {self.process.wait()})")
        return float(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def compare(base: Worker, new: Worker, samples: int, repeats: int) -> tuple[list[list[float]], list[list[float]]]:
    """(base, new) CPU seconds, [repeat][sample], of samples 1..``samples``, the order alternating."""
    times: tuple[list[list[float]], list[list[float]]] = ([], [])
    for repeat in range(repeats):
        row_base, row_new = [], []
        for index in range(1, samples + 1):
            if (index + repeat) % 2:
                row_base.append(base.seconds(index))
                row_new.append(new.seconds(index))
            else:
                row_new.append(new.seconds(index))
                row_base.append(base.seconds(index))
        times[0].append(row_base)
        times[1].append(row_new)
    return times


def summary(base: list[list[float]], new: list[list[float]]) -> list[str]:
    """Lines: each repeat's mean time a sample and ratio, then the minimum over repeats."""
    lines = [
        f"repeat {r + 1}: base {sum(b) / len(b) * 1e3:.1f} ms, new {sum(n) / len(n) * 1e3:.1f} ms a sample, "
        f"new/base {sum(n) / sum(b):.3f}"
        for r, (b, n) in enumerate(zip(base, new))
    ]
    low_base = [min(column) for column in zip(*base)]
    low_new = [min(column) for column in zip(*new)]
    median = statistics.median(n / b for n, b in zip(low_new, low_base))
    lines.append(
        f"minimum over repeats: base {sum(low_base) / len(low_base) * 1e3:.1f} ms, new "
        f"{sum(low_new) / len(low_new) * 1e3:.1f} ms a sample, new/base {sum(low_new) / sum(low_base):.3f} "
        f"(median per sample {median:.3f})"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="Python interpreter of the version to compare against")
    parser.add_argument("--new", required=True, help="Python interpreter of the version measured")
    parser.add_argument("--samples", type=int, default=30, help="samples 1..N of the seed (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the samples (default 3)")
    parser.add_argument("--seed", type=int, default=31337, help="the dataset seed (default 31337)")
    parser.add_argument("--resolution", type=int, default=256, help="the samples' side (default 256)")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.repeats < 1 or args.resolution < 16:
        print("generator_ab: --samples and --repeats must be >= 1, --resolution >= 16", file=sys.stderr)
        return 2
    workers = []
    try:
        for python in (args.base, args.new):
            workers.append(Worker(python, args.seed, args.resolution))
        for line in summary(*compare(*workers, args.samples, args.repeats)):
            print(line)
    except (OSError, RuntimeError) as error:
        print(f"generator_ab: {error}", file=sys.stderr)
        return 1
    finally:
        for worker in workers:
            worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
