"""The options of a training run (:class:`TrainConfig`) and the defaults of each model size.

Kept free of torch so that ``mould train --help`` and config validation stay instant.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mould.checks import check_option
from mould.devices import DEVICES, Device
from mould.errors import InputError
from mould.limits import LIMITS
from mould.recon.mesh import MESHERS, Mesher

MAX_BATCH_SIZE = 4096
"""Samples per step and process: a 256² record is 3.9 MB, so 16 GB a batch (the paper used 16)."""
MAX_PROCESSES = 1024
"""Training processes under torchrun (128 machines of 8 GPUs); bounds a resumed state's sample count."""
MAX_WORKERS = 64
"""Data workers per training process: each is a process with its own copy of the dataset's state."""
MAX_VAL_SAMPLES = 100_000
"""Samples of one validation pass (each is a forward pass, and a meshing with --val-meshes)."""
MAX_TIME_LIMIT = 366 * 24 * 3600.0
"""Longest ``--time-limit``, seconds (a year: anything longer is a typo)."""

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("auto", "fp32", "bf16", "fp16")
Trainable = Literal["all", "back"]
TRAINABLE: tuple[Trainable, ...] = ("all", "back")
StreamRender = Literal["device", "workers"]
STREAM_RENDERS: tuple[StreamRender, ...] = ("device", "workers")

PRESETS: dict[str, dict[str, object]] = {
    # Per model size, the defaults that differ from TrainConfig's own; the command line overrides them.
    # tiny: unit tests and smoke runs on CPU.
    "tiny": {"batch_size": 4, "steps": 200, "warmup_steps": 20, "val_every": 100, "ckpt_every": 100},
    # small: the shipped model, trained on CPU: 1.3-1.9 CPU-seconds a step at batch 8 and 256²
    # (docs/training.md), so 3,000 steps take about 3 hours on a shared 2-core machine.
    "small": {"batch_size": 8, "steps": 3_000, "warmup_steps": 200, "val_every": 250, "ckpt_every": 250},
    # medium: 1.6x small's CPU cost per step (issue #11); trained on a GPU, or fine-tuned on CPU.
    "medium": {"batch_size": 8, "steps": 3_000, "warmup_steps": 200, "val_every": 250, "ckpt_every": 250},
    # paper: Gabeur et al. (2 stacks, 256 features) on a GPU.
    "paper": {"batch_size": 16, "steps": 200_000, "lr": 2.5e-4, "val_every": 2000, "ckpt_every": 2000},
}


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``mould train``. Validated on construction (:class:`InputError` naming the option)."""

    model: str
    """Model size, a name of ``mould.models.CONFIGS`` (``tiny``, ``small``, ``medium``, ``paper``)."""
    data: tuple[tuple[Path, float], ...]
    """Training folders with their sampling weights (``--data DIR[:WEIGHT][,DIR...]``)."""
    out: Path
    """The run folder: checkpoints, logs, metrics; nothing is written outside it."""
    steps: int = 20_000
    """Total optimisation steps (one generator update, plus one discriminator update once adversarial)."""
    time_limit: float | None = None
    """Wall time of the whole run in seconds (every session, validation and checkpoints included), or None:
    the run ends at ``steps`` or at this time, whichever comes first, with a validation pass and a
    checkpoint. The cosine decay and the adversarial start follow the larger of the fractions of steps and
    of time done, so a run given a time budget (a GPU lease) ends with its learning rate decayed."""
    batch_size: int = 8
    """Samples per step and per process (under torchrun the global batch is this times the processes)."""
    lr: float = 2e-4
    """Peak learning rate of the generator's Adam."""
    discriminator_lr: float | None = None
    """Peak learning rate of the discriminator's Adam; None: the same as ``lr``."""
    warmup_steps: int = 500
    """Linear learning-rate warm-up from 0, then a cosine decay to ``min_lr_ratio`` x the peak at ``steps``."""
    min_lr_ratio: float = 0.05
    """Final learning rate as a fraction of the peak."""
    grad_clip: float = 1.0
    """Largest global gradient norm (per network); larger gradients are scaled down. 0 turns clipping off."""
    adversarial_start: float = 0.3
    """When the adversarial term and the discriminator's updates switch on: a fraction of ``steps`` if
    < 1, else a step number. Before it the generator learns from the reconstruction losses alone, so the
    discriminator does not start against noise."""
    adversarial_weight: float | None = None
    """Weight of the adversarial term (``LossConfig.adversarial``); None: the loss config's default; 0: no
    discriminator at all (a step then costs about 30 % less on CPU)."""
    loss: tuple[str, ...] = ()
    """Loss options as ``NAME=VALUE``, fields of ``mould.models.configs.LossConfig`` (e.g.
    ``hidden_term=thickness``, ``coarse=0.5``, ``adversarial_share=0.2``); checked when the run starts."""
    precision: Precision = "auto"
    """Arithmetic: ``auto`` is bf16 autocast on a GPU that has it (fp16 with gradient scaling on older
    GPUs) and fp32 on CPU, where autocast is slower."""
    device: Device = "auto"
    """``auto`` picks CUDA when available."""
    seed: int = 0
    """Seeds weights, data order and augmentation: the same seed and options give the same run."""
    workers: int | None = None
    """DataLoader worker processes per training process (0 loads in the training process); None: one per
    core left over by the training processes, 1 to 8 (a 256² sample costs ~30 ms of CPU to load and
    augment, against 1.3-1.9 s per step of the small model on one CPU core)."""
    threads: int | None = None
    """torch CPU threads per process; None: the process's share of the cores less one (1 on 2 cores)."""
    stream_render: StreamRender = "device"
    """Where a ``synth`` stream's samples are rendered: ``device``, on the training GPU (the data workers only
    draw the random choices; on a CPU the workers make whole samples anyway), or ``workers``, whole samples
    made by the CPU data workers, slower (a fallback should the GPU renderer fail)."""
    backgrounds: Path | None = None
    """Folder of photos whose random crops are the backgrounds of a ``synth`` stream's samples (90 % of them;
    procedural backgrounds otherwise, and always when None), e.g. ``tools/background_photos.py``'s."""
    augment: bool = True
    """Augment training records (crop jitter, flips, colour, occluders: mould.datasets.augment)."""
    val: Path | None = None
    """Held-out folder of samples for the validation pass; None: no validation (logged)."""
    val_every: int = 500
    """Steps between validation passes (also at the end)."""
    val_samples: int = 64
    """Validation samples scored per pass (evenly spread over the folder)."""
    val_meshes: int = 4
    """Of those, how many are meshed for the point-to-surface error (P2S)."""
    val_mesher: Mesher = "stitch"
    """Mesher of the validation P2S: ``stitch`` takes ~0.05 s a mould; ``poisson`` (``mould eval``'s
    default) took ~3 s of CPU a mould at 256² when measured, and the truth is meshed too."""
    ckpt_every: int = 500
    """Steps between checkpoints (also at the end, and when the run is interrupted)."""
    keep_checkpoints: int = 3
    """Most recent checkpoints kept; older ones are deleted once a newer one is safely written."""
    log_every: int = 10
    """Steps between loss records in metrics.csv and TensorBoard (each record averages those steps)."""
    resume: bool = False
    """Continue the run in ``out`` from its latest checkpoint."""
    init: Path | None = None
    """Start from these weights (a ``.safetensors`` checkpoint of the same model config, or of a config with
    fewer hourglass features, widened: ``small`` for ``medium``) instead of a random initialisation:
    fine-tuning, e.g. of the shipped model. Optimisers, schedule, discriminator and step
    start afresh. Ignored by ``resume``, whose checkpoint already holds the fine-tuned weights."""
    trainable: Trainable = "all"
    """What the run trains: ``all`` the weights, or ``back`` the back-colour branch alone
    (:func:`mould.models.hourglass.train_back_branch_only`: depth and silhouette stay bit-identical to
    ``init``'s; no discriminator). ``back`` needs ``init`` or ``resume``: random features teach nothing."""

    def __post_init__(self) -> None:
        if not self.data:
            raise InputError("--data: expected at least one folder")
        most = LIMITS.training_steps
        bounds = {  # option -> (low, high)
            "steps": (1, most), "batch_size": (1, MAX_BATCH_SIZE), "warmup_steps": (0, most),
            "val_every": (1, most), "val_samples": (1, MAX_VAL_SAMPLES), "val_meshes": (0, MAX_VAL_SAMPLES),
            "ckpt_every": (1, most), "keep_checkpoints": (1, 1000), "log_every": (1, most),
            "workers": (0, MAX_WORKERS), "threads": (1, 1024), "seed": (0, 2**63 - 1),
            "min_lr_ratio": (0, 1), "grad_clip": (0, None), "adversarial_weight": (0, None),
            "adversarial_start": (0, most),
        }  # fmt: skip
        for name, (low, high) in bounds.items():
            check_option(f"--{name.replace('_', '-')}", getattr(self, name), low, high)
        if self.time_limit is not None and not 0 < self.time_limit <= MAX_TIME_LIMIT:
            raise InputError(f"--time-limit: expected 0 < seconds <= {MAX_TIME_LIMIT:.0f}, got {self.time_limit}")
        for name in ("lr", "discriminator_lr"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise InputError(f"--{name.replace('_', '-')}: expected 0 < lr < 1, got {value}")
        if self.val_mesher not in MESHERS:
            raise InputError(f"--val-mesher: expected one of {', '.join(MESHERS)}, got {self.val_mesher}")
        if self.precision not in PRECISIONS:
            raise InputError(f"--precision: expected auto, fp32, bf16 or fp16, got {self.precision}")
        if self.device not in DEVICES:
            raise InputError(f"--device: expected auto, cpu or cuda, got {self.device}")
        if self.stream_render not in STREAM_RENDERS:
            raise InputError(f"--stream-render: expected device or workers, got {self.stream_render}")
        if self.backgrounds is not None and not self.backgrounds.is_dir():
            raise InputError(f"--backgrounds: {self.backgrounds} is not a folder")
        if self.trainable not in TRAINABLE:
            raise InputError(f"--trainable: expected all or back, got {self.trainable}")
        if self.trainable == "back":
            if self.init is None and not self.resume:
                raise InputError("--trainable back: needs --init WEIGHTS (the network whose back it learns)")
            if self.adversarial_weight:
                raise InputError("--trainable back: the back colour trains without a discriminator; "
                                 "drop --adversarial-weight")  # fmt: skip

    @property
    def adversarial_step(self) -> int:
        """The first step with the adversarial term (earlier under a time limit: :meth:`adversarial_on`)."""
        if self.adversarial_start < 1:
            return int(round(self.adversarial_start * self.steps))
        return int(self.adversarial_start)

    def adversarial_on(self, step: int, time_fraction: float = 0.0) -> bool:
        """Whether step ``step`` (0-based) has the adversarial term, ``time_fraction`` of ``time_limit``
        being spent (0 without one): from :attr:`adversarial_step`, or once that fraction of the time has
        passed when ``adversarial_start`` is a fraction."""
        by_time = self.adversarial_start < 1 and time_fraction >= self.adversarial_start
        return step >= self.adversarial_step or by_time

    def discriminator_time_fraction(self, time_fraction: float) -> float:
        """The share of the discriminator's own schedule that ``time_fraction`` of the time limit has run:
        it starts with the adversarial term and ends with the run."""
        start = self.adversarial_start if self.adversarial_start < 1 else 0.0
        return min(max((time_fraction - start) / (1 - start), 0.0), 1.0)

    def to_json(self) -> str:
        """The options as JSON (paths as strings), recorded in the run folder and the checkpoints."""

        def plain(value):
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        return json.dumps({k: plain(v) for k, v in dataclasses.asdict(self).items()}, sort_keys=True)


def make_train_config(model: str, **options) -> TrainConfig:
    """A :class:`TrainConfig` for a model size: :data:`PRESETS`, then ``options`` that are not None."""
    # A size without a preset takes TrainConfig's defaults; whether mould.models knows it is checked when
    # the model is built (that needs torch, which this module avoids).
    merged = {**PRESETS.get(model, {}), **{k: v for k, v in options.items() if v is not None}}
    return TrainConfig(model=model, **merged)
