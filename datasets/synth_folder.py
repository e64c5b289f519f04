"""Folders of synthetic samples: ``mould synth``'s runs, their manifest, resumption and speed.

:func:`synthesize` writes samples ``0000000``, ``0000001``... with :func:`mould.datasets.samples.write_sample`,
skipping those already complete, so a run can be stopped and restarted. On the CPU each worker process makes
and writes whole samples, one at a time; on a GPU (``device="cuda"``), worker processes draw the samples'
random choices, the GPU builds and renders them in batches, and threads write them (PNG and zlib release
Python's lock).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import multiprocessing
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mould.datasets.synthetic import GENERATOR_VERSION, SynthConfig, generate_sample, render_draws

from mould.errors import InputError
from mould.files import write_atomic

log = logging.getLogger(__name__)

MANIFEST = ".synth.json"
"""The run's settings (hidden, so that sample listings, which read every *.json, never take it for a sample)."""
_SAMPLE_FILE = re.compile(r"^\d{7}\.(png|npz|json)$")
_TEMPORARY_FILE = re.compile(r"^\..+\.tmp$")


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`synthesize` did."""

    requested: int
    written: int
    skipped: int
    seconds: float
    """Wall-clock time, worker start-up included."""
    cpu_seconds: float = 0.0
    """CPU time of this process and its workers (user + system), start-up included."""
    failed: list[str] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def samples_per_cpu_second(self) -> float:
        """Samples per second of one core's time: the throughput per core, even on a shared machine."""
        return self.written / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def sample_name(index: int) -> str:
    return f"{index:07d}"


def _manifest(seed: int, config: SynthConfig) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "resolution": config.resolution,
        "views": config.views,
        "wardrobe": config.wardrobe,
        "low_key": config.low_key,
        "backgrounds": [str(p) for p in config.backgrounds],
    }


def check_output_folder(outdir: Path, seed: int, config: SynthConfig, *, force: bool) -> None:
    """Refuse a folder holding foreign files or another run's samples, unless ``force``.

    Raises:
        InputError: naming the first foreign file, or the setting that differs.
    """
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir}: exists and is not a folder")
    if not outdir.is_dir() or force:
        return
    for path in sorted(outdir.iterdir()):
        if path.name == MANIFEST or _SAMPLE_FILE.match(path.name) or _TEMPORARY_FILE.match(path.name):
            continue
        raise InputError(f"{outdir}: holds a file that mould synth did not write ({path.name}); use --force")
    manifest_path = outdir / MANIFEST
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text())
        except ValueError:
            raise InputError(f"{manifest_path}: unreadable; use --force to overwrite") from None
        current = _manifest(seed, config)
        for key in ("generator_version", "seed", "resolution", "views", "wardrobe", "low_key"):
            if previous.get(key) != current[key]:
                raise InputError(
                    f"{outdir}: holds samples made with {key} = {previous.get(key)}, not {current[key]}; "
                    "use another folder or --force"
                )


def is_complete(outdir: Path, index: int, seed: int, resolution: int) -> bool:
    """Whether sample ``index`` of this run is already there: its three files exist and its JSON names this
    seed, index, resolution and generator version.

    The JSON is written last and atomically, so a readable JSON means the PNG and NPZ were written whole;
    damage done afterwards is the loader's business (it skips and counts corrupt samples).
    """
    name = sample_name(index)
    if not all((outdir / f"{name}{suffix}").is_file() for suffix in (".png", ".npz")):
        return False
    try:
        params = json.loads((outdir / f"{name}.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        params.get("seed") == seed
        and params.get("index") == index
        and params.get("generator_version") == GENERATOR_VERSION
        and params.get("camera", {}).get("resolution") == resolution
    )


_WORKER: dict = {}


def _init_worker(outdir: str, seed: int, config: SynthConfig) -> None:
    """A worker process: one torch thread (also keeps float results independent of the thread count), the
    body bank and the atlas loaded once."""
    import torch

    torch.set_num_threads(1)
    from mould.datasets.atlas import atlas_tensors
    from mould.datasets.bodies import body_bank

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        body_bank()
        atlas_tensors(torch.device("cpu"))
    _WORKER.update(outdir=Path(outdir), seed=seed, config=config)


def _make_one(index: int) -> tuple[int, str | None]:
    """Generate and write sample ``index`` (CPU); returns (index, error or None)."""
    from mould.datasets.samples import write_sample

    try:
        mould, image, params = generate_sample(index, _WORKER["seed"], _WORKER["config"])
        write_sample(_WORKER["outdir"], sample_name(index), mould, image, params)
    except Exception as error:  # a failed sample must not stop the run; it is reported in the summary
        log.exception("sample %d failed", index)
        return index, f"{type(error).__name__}: {error}"
    return index, None


def _draw_one(index: int):
    """The draw of sample ``index`` (a worker of a device run)."""
    from mould.datasets.scenes import draw_scene

    return draw_scene(_WORKER["seed"], index, _WORKER["config"])


def synthesize(
    outdir: str | os.PathLike,
    count: int,
    seed: int = 0,
    config: SynthConfig | None = None,
    *,
    workers: int = 1,
    device: str = "cpu",
    batch: int = 1,
    force: bool = False,
    progress: bool = True,
) -> SynthSummary:
    """Generate samples ``0 .. count-1`` into ``outdir``, skipping those already complete.

    Args:
        outdir: the output folder (created).
        count: how many samples the folder should hold.
        seed: the dataset's seed.
        config: generation settings.
        workers: worker processes (CPU: each makes whole samples, 1 runs in this process; device: they draw
            the random choices, and as many threads write files).
        device: ``"cpu"``, or a torch device (``"cuda"``) on which batches are built and rendered.
        batch: samples rendered at once. With 1 on the CPU, each worker makes whole samples (bit-identical
            whatever the number of workers); otherwise workers draw and this process renders batches on
            ``device`` (on a GPU; on the CPU it exercises that path).
        force: accept a folder holding other files or another run's samples (samples of another seed,
            resolution or generator version are regenerated where the names collide; foreign files are
            left alone).
        progress: show a progress bar on stderr (tqdm's, where installed).

    Raises:
        InputError: bad count, workers or batch, or a refused folder (see :func:`check_output_folder`),
            or no body bank.
    """
    from mould.datasets.bank import bank_path

    from mould.progress import progress_bar

    config = config or SynthConfig()
    if count < 1:
        raise InputError(f"--count: expected >= 1, got {count}")
    if workers < 1:
        raise InputError(f"--workers: expected >= 1, got {workers}")
    if batch < 1:
        raise InputError(f"--batch: expected >= 1, got {batch}")
    if device != "cpu":
        import torch

        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA device on this machine; use --device cpu")
    outdir = Path(outdir)
    check_output_folder(outdir, seed, config, force=force)
    bank_path()  # made here, once, before any worker looks for it
    outdir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_manifest(seed, config), indent=1).encode()
    write_atomic(outdir / MANIFEST, lambda handle: handle.write(text))
    todo = [i for i in range(count) if not is_complete(outdir, i, seed, config.resolution)]
    skipped = count - len(todo)
    failed: list[str] = []
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    bar = progress_bar(total=len(todo), unit="sample", disable=not progress, desc="synth")

    def report(index: int, error: str | None) -> None:
        if error:
            failed.append(f"{sample_name(index)}: {error}")
        bar.update(1)

    if device != "cpu" or batch > 1:
        _synthesize_on_device(outdir, todo, seed, config, device, batch, workers, report)
    elif workers == 1 or len(todo) <= 1:
        import torch

        threads = torch.get_num_threads()
        try:
            _init_worker(str(outdir), seed, config)
            for index in todo:
                report(*_make_one(index))
        finally:
            torch.set_num_threads(threads)
    else:
        context = multiprocessing.get_context("spawn")  # fork after torch threads start can deadlock
        with context.Pool(workers, initializer=_init_worker, initargs=(str(outdir), seed, config)) as pool:
            for index, error in pool.imap_unordered(_make_one, todo, chunksize=4):
                report(index, error)
    bar.close()
    seconds = time.perf_counter() - start
    return SynthSummary(
        requested=count,
        written=len(todo) - len(failed),
        skipped=skipped,
        seconds=seconds,
        cpu_seconds=_cpu_seconds() - cpu_start,
        failed=failed,
    )


def _synthesize_on_device(outdir: Path, todo: list[int], seed: int, config: SynthConfig, device: str,
                          batch: int, workers: int, report) -> None:  # fmt: skip
    """Draws in worker processes, batches built and rendered on ``device``, files written by threads."""
    from mould.datasets.samples import write_sample

    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(str(outdir), seed, config)) as pool, \
            ThreadPoolExecutor(workers) as writers:  # fmt: skip
        pending = []
        draws = pool.imap(_draw_one, todo, chunksize=8)
        group: list = []
        for draw in itertools.chain(draws, [None]):  # None: the end, render what is left
            if draw is not None:
                group.append(draw)
            if group and (draw is None or len(group) == batch):
                for sample, error, index in _render_group(group, config, device):
                    if error:
                        report(index, error)
                        continue
                    job = writers.submit(write_sample, outdir, sample_name(index), *sample)
                    pending.append((index, job))
                group = []
                # Bound memory: a batch is written while the next is rendered.
                while len(pending) > 2 * batch:
                    report(*_finished(*pending.pop(0)))
        for index, job in pending:
            report(*_finished(index, job))


def _render_group(group: list, config: SynthConfig, device: str):
    """Yield ((mould, image, params), error, index) for a batch of draws; a failing batch is rendered
    sample by sample so that one bad sample fails alone."""
    try:
        samples = render_draws(group, config, device=device)
    except Exception:  # noqa: BLE001 - isolate the failure below
        samples = None
    if samples is not None:
        for sample, draw in zip(samples, group):
            yield sample, None, draw.index
        return
    for draw in group:
        try:
            yield render_draws([draw], config, device=device)[0], None, draw.index
        except Exception as error:  # a failed sample must not stop the run
            log.exception("sample %d failed", draw.index)
            yield None, f"{type(error).__name__}: {error}", draw.index


def _finished(index: int, job) -> tuple[int, str | None]:
    try:
        job.result()
    except Exception as error:
        log.exception("sample %d could not be written", index)
        return index, f"{type(error).__name__}: {error}"
    return index, None


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished children (pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class GenerationSpeed:
    """What :func:`generation_speed` measured (samples made in memory, no files written).

    Attributes:
        samples: samples made in the timed window; seconds: its length.
        cpu_seconds: CPU time spent on those samples: the workers' (drawing, or making whole samples) and,
            on a device, this process's (launching the device's work).
        render_seconds: time the device spent building and rendering batches (device runs; 0 on the CPU).
    """

    samples: int
    seconds: float
    cpu_seconds: float
    render_seconds: float = 0.0

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


def _make_in_memory(index: int) -> float:
    """Generate sample ``index`` and drop it; returns the CPU seconds it took (a worker of a speed test)."""
    start = time.process_time()
    generate_sample(index, _WORKER["seed"], _WORKER["config"])
    return time.process_time() - start


def _draw_timed(index: int):
    """(draw of sample ``index``, CPU seconds it took) for a speed test."""
    start = time.process_time()
    draw = _draw_one(index)
    return draw, time.process_time() - start


def generation_speed(
    config: SynthConfig, *, device: str = "cpu", seconds: float = 30.0, batch: int = 1, workers: int = 1
) -> GenerationSpeed:
    """How fast the generator makes samples in memory: on the CPU, ``workers`` processes making whole
    samples (``batch`` 1); on a device (or with ``batch`` > 1), ``workers`` processes drawing and the device
    building and rendering batches of ``batch`` (what ``mould train --data synth`` does on a GPU). Timed
    from the first sample made (worker start-up and the first batch excluded) for about ``seconds``."""
    import torch

    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=("", 0, config)) as pool:
        if device == "cpu" and batch == 1:
            made = pool.imap_unordered(_make_in_memory, itertools.count(), chunksize=1)
            next(made)
            start, count, cpu = time.perf_counter(), 0, 0.0
            while time.perf_counter() - start < seconds:
                cpu += next(made)
                count += 1
            return GenerationSpeed(count, time.perf_counter() - start, cpu)
        draws = pool.imap(_draw_timed, itertools.count(), chunksize=8)
        render_draws([next(draws)[0] for _ in range(batch)], config, device=device)  # warm-up: kernels, caches
        start, own_start, count, cpu, rendering = time.perf_counter(), time.process_time(), 0, 0.0, 0.0
        while time.perf_counter() - start < seconds:
            timed = [next(draws) for _ in range(batch)]
            began = time.perf_counter()
            render_draws([draw for draw, _ in timed], config, device=device)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            rendering += time.perf_counter() - began
            count += len(timed)
            cpu += sum(seconds for _, seconds in timed)
        cpu += time.process_time() - own_start
        return GenerationSpeed(count, time.perf_counter() - start, cpu, rendering)
