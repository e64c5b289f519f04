"""``mould bench model``: forward time, parameters and FLOPs of each network size at 256²."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from mould.commands.bench import timings
from mould.errors import InputError
from mould.training.run_info import cpu_model


@dataclass(frozen=True)
class BenchModelConfig:
    """Options of ``mould bench model``."""

    configs: tuple[str, ...] = field(default=("small", "paper"))
    """Model sizes to time."""
    resolution: int = 256
    """Crop side."""
    repeats: int = 10
    """Timed forward passes per figure; the median is reported (after two warm-up passes)."""
    threads: int = 2
    """torch CPU threads."""
    train_batch: int = 0
    """When > 0, also time a training step (forward, losses without the discriminator, backward, Adam) at
    this batch size, channels_last."""

    def __post_init__(self) -> None:
        for name in ("resolution", "repeats", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(self, name)}")
        if self.train_batch < 0:
            raise InputError(f"--train-batch: expected >= 0, got {self.train_batch}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "model",
        help="time the network's forward pass at 256², with parameters and FLOPs",
        description="Time one forward pass (batch 1, eval mode, torch.inference_mode) of each model size in "
        "both memory formats and print the median of --repeats runs, the parameters and the FLOPs.",
    )
    p.add_argument("--configs", nargs="+", default=["small", "paper"], help="model sizes (default small paper)")
    p.add_argument("--resolution", type=int, default=256, help="crop side (default 256)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per figure (default 10)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument(
        "--train-batch", type=int, default=0, help="also time a training step at this batch size (default 0: off)"
    )
    p.set_defaults(run=run)


def _train_step_s(config, resolution: int, batch: int, repeats: int) -> tuple[float, float]:
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


def _text(timing: tuple[float, float]) -> str:
    return f"{timing[0]:.3f} ({timing[1]:.3f})"


def run(args: argparse.Namespace) -> int:
    config = BenchModelConfig(
        configs=tuple(args.configs),
        resolution=args.resolution,
        repeats=args.repeats,
        threads=args.threads,
        train_batch=args.train_batch,
    )
    import torch

    from mould.models import CONFIGS, build_model, count_flops, count_parameters

    unknown = [name for name in config.configs if name not in CONFIGS]
    if unknown:
        raise InputError(f"--configs: unknown model sizes {unknown}; known: {', '.join(CONFIGS)}")
    torch.set_num_threads(config.threads)
    side = config.resolution
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {config.threads} threads; batch 1, {side}², eval, inference_mode"
    )
    train_column = f" train step, batch {config.train_batch} (s) |" if config.train_batch else ""
    print("times: median (best) of --repeats runs, seconds")
    print(f"| config | parameters | GFLOPs | forward, contiguous | forward, channels_last |{train_column}")
    print("| --- | --- | --- | --- | --- |" + (" --- |" if config.train_batch else ""))
    for name in config.configs:
        model = build_model(name).eval()
        if side % model.config.input_multiple:
            raise InputError(f"--resolution: expected a multiple of {model.config.input_multiple}, got {side}")
        image = torch.rand(1, 3, side, side)
        times = []
        for memory_format in (torch.contiguous_format, torch.channels_last):
            model = model.to(memory_format=memory_format)
            with torch.inference_mode():
                times.append(timings(lambda model=model, image=image: model(image), config.repeats, warmup=2))
        row = (
            f"| {name} | {count_parameters(model) / 1e6:.2f} M | {count_flops(model, side) / 1e9:.2f} | "
            f"{_text(times[0])} | {_text(times[1])} |"
        )
        if config.train_batch:
            step = _train_step_s(model.config, side, config.train_batch, max(1, config.repeats // 2))
            row += f" {_text(step)} |"
        print(row)
    return 0
