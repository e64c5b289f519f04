"""``mould bench model``: forward time, parameters and FLOPs of each network size (and a training step's time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mould.benchmarks.timings import Timing, timings
from mould.checks import check_option
from mould.errors import InputError
from mould.machine import describe_machine
from mould.tolerances import DEFAULT_TOLERANCES


@dataclass(frozen=True)
class BenchModelConfig:
    """Options of ``mould bench model``."""

    configs: tuple[str, ...] = field(default=("small", "paper"))
    """Model sizes to time (names of ``mould.models.CONFIGS``)."""
    resolution: int = 256
    """Crop side in pixels (a multiple of the model's input multiple)."""
    repeats: int = 10
    """Timed forward passes per figure; the median is reported (after two warm-up passes)."""
    threads: int = 2
    """torch CPU threads."""
    train_batch: int = 0
    """When > 0, also time a training step (forward, losses without the discriminator, backward, Adam) at
    this batch size, channels_last."""

    def __post_init__(self) -> None:
        if not self.configs:
            raise InputError("--configs: expected at least one model size")
        check_option("--resolution", self.resolution, 1, DEFAULT_TOLERANCES.max_resolution)
        check_option("--repeats", self.repeats, 1, 10_000)
        check_option("--threads", self.threads, 1, 1024)
        check_option("--train-batch", self.train_batch, 0, 4096)


@dataclass(frozen=True)
class ModelTiming:
    """The figures of one model size (batch 1, eval mode, ``torch.inference_mode``)."""

    config: str
    """The model size's name."""
    parameters: int
    """The generator's parameters."""
    flops: int
    """Floating-point operations of one forward pass at the bench's resolution."""
    contiguous: Timing
    """Forward pass, seconds, input and weights in the default (NCHW) memory format."""
    channels_last: Timing
    """Forward pass, seconds, NHWC."""
    train_step: Timing | None
    """Training step, seconds (None unless ``train_batch`` > 0)."""

    def row(self) -> str:
        """This size as a row of the table that :func:`bench_model` echoes."""
        row = (
            f"| {self.config} | {self.parameters / 1e6:.2f} M | {self.flops / 1e9:.2f} | "
            f"{self.contiguous.text()} | {self.channels_last.text()} |"
        )
        return row + (f" {self.train_step.text()} |" if self.train_step is not None else "")


def _train_step(config, resolution: int, batch: int, repeats: int) -> Timing:
    """Time a generator update (no discriminator) on random images and a box-shaped person, channels_last.

    Args:
        config: the :class:`mould.models.ModelConfig` to build.
        resolution: crop side in pixels; batch: samples per step; repeats: timed steps after one warm-up.
    """
    import torch

    from mould.models import LossConfig, build_model
    from mould.models.losses import generator_losses

    model = build_model(config).to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, 1, resolution, resolution)
    mask[..., resolution // 8 : -resolution // 8, resolution // 4 : -resolution // 4] = 1
    records = {
        "image": torch.rand(batch, 3, resolution, resolution, generator=generator),
        "visible": mask * 3.0,
        "hidden": mask * 3.3,
        "mask": mask,
        "intrinsics": torch.tensor([[resolution * 2.0, resolution / 2 - 0.5, resolution / 2 - 0.5]] * batch),
        "perspective": torch.ones(batch, dtype=torch.bool),
    }
    loss_config = LossConfig.for_model(config, adversarial=0.0)

    def step() -> None:
        losses = generator_losses(model(records["image"]), records, loss_config)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()

    return timings(step, repeats, warmup=1)


def bench_model(config: BenchModelConfig, echo: Callable[[str], None]) -> list[ModelTiming]:
    """Time each model size's forward pass in both memory formats (and a training step if asked) on random
    weights; sets torch's CPU threads to ``config.threads``.

    ``echo`` receives the machine line and a markdown table, row by row.

    Raises:
        InputError: an unknown model size, or a resolution that a size cannot take.
    """
    import torch

    from mould.models import CONFIGS, build_model, count_flops, count_parameters

    unknown = [name for name in config.configs if name not in CONFIGS]
    if unknown:
        raise InputError(f"--configs: unknown model sizes {unknown}; known: {', '.join(CONFIGS)}")
    torch.set_num_threads(config.threads)
    side = config.resolution
    echo(
        f"machine: {describe_machine()}; "
        f"torch {torch.__version__}, {config.threads} threads; batch 1, {side}², eval, inference_mode"
    )
    train_column = f" train step, batch {config.train_batch} (s) |" if config.train_batch else ""
    echo("times: median (best) of --repeats runs, seconds")
    echo(f"| config | parameters | GFLOPs | forward, contiguous | forward, channels_last |{train_column}")
    echo("| --- | --- | --- | --- | --- |" + (" --- |" if config.train_batch else ""))
    results = []
    for name in config.configs:
        model = build_model(name).eval()
        if side % model.config.input_multiple:
            raise InputError(f"--resolution: expected a multiple of {model.config.input_multiple}, got {side}")
        image = torch.rand(1, 3, side, side)
        forward = []
        for memory_format in (torch.contiguous_format, torch.channels_last):
            model = model.to(memory_format=memory_format)
            with torch.inference_mode():
                forward.append(timings(lambda model=model, image=image: model(image), config.repeats, warmup=2))
        step = None
        if config.train_batch:
            step = _train_step(model.config, side, config.train_batch, max(1, config.repeats // 2))
        results.append(
            ModelTiming(name, count_parameters(model), count_flops(model, side), forward[0], forward[1], step)
        )
        echo(results[-1].row())
    return results
