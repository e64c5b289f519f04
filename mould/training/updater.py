"""One optimisation step of the generator and its discriminator, and the state that carries it.

:class:`Updater` owns the networks' optimisers, learning-rate schedules and gradient scalers. A step
updates the generator on its losses (:func:`mould.models.losses.generator_losses`), then, once the
adversarial warm-up is over, the discriminator on the same batch against the detached predictions
(:func:`mould.models.losses.discriminator_losses`). Gradients are clipped; on a GPU the forward passes
run under autocast (bf16, or fp16 with gradient scaling).

Under torchrun the generator is wrapped in DistributedDataParallel. The discriminator is not: its loss
calls it twice (true and predicted moulds) before one backward, which DDP's gradient hooks do not allow,
so its gradients are averaged by :func:`~mould.training.distributed.average_gradients` instead, and in the
generator's step it is called unwrapped with frozen parameters.
"""

from __future__ import annotations

import logging
import math

import torch

from mould.errors import MouldError
from mould.training import distributed as dist_tools
from mould.training import setup as train_setup
from mould.training.config import TrainConfig

log = logging.getLogger(__name__)

DIVERGED_AFTER = 20
"""Consecutive steps with a non-finite gradient after which the run stops (a learning rate too high)."""

STATE_KEYS = ("optimizer", "scheduler", "scaler", "discriminator", "d_optimizer", "d_scheduler")
"""The keys of :meth:`Updater.state_dict` (a part of the training state file)."""


class Updater:
    """Optimisers, schedules and scalers of a generator and an optional discriminator.

    Args:
        model: the generator (MouldNet), on its device.
        discriminator: the discriminator, or None when the adversarial weight is 0.
        loss_config: the loss weights (``mould.models.LossConfig``).
        config: the run's options (learning rates, warm-ups, clipping, steps).
        precision: ``fp32``, ``bf16`` or ``fp16`` (:func:`~mould.training.setup.resolve_precision`).
        processes: this process in the run.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        discriminator: torch.nn.Module | None,
        loss_config,
        config: TrainConfig,
        precision: str,
        processes: dist_tools.Processes,
    ) -> None:
        self.model, self.discriminator, self.loss_config = model, discriminator, loss_config
        self.config, self.precision, self.processes = config, precision, processes
        self.device = processes.device
        self.time_fraction = 0.0
        """The share of ``config.time_limit`` spent (0 without one), set by :meth:`step`; the schedules read it."""
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
        self.scheduler = train_setup.schedule(
            self.optimizer, config.warmup_steps, config.steps, config.min_lr_ratio, lambda: self.time_fraction
        )
        fp16 = precision == "fp16"
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.d_optimizer = self.d_scheduler = None
        if discriminator is not None:
            # beta1 = 0.5: the usual Adam setting for GAN discriminators (Radford et al. 2016).
            self.d_optimizer = torch.optim.Adam(
                discriminator.parameters(), lr=config.discriminator_lr or config.lr, betas=(0.5, 0.999)
            )
            d_steps = max(config.steps - config.adversarial_step, 1)
            self.d_scheduler = train_setup.schedule(
                self.d_optimizer, config.warmup_steps, d_steps, config.min_lr_ratio,
                lambda: config.discriminator_time_fraction(self.time_fraction),
            )  # fmt: skip
        self.net = model
        self._bad_steps = 0

    def distribute(self) -> None:
        """Wrap the generator in DistributedDataParallel (after any weights are loaded)."""
        if self.processes.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

    def step(self, batch: dict[str, torch.Tensor], step: int, time_fraction: float = 0.0) -> dict[str, float]:
        """Update on one batch (already on the device; ``skipped`` removed) as step number ``step`` (0-based),
        ``time_fraction`` of the run's time limit being spent (0 without one).

        Returns:
            Every loss term (generator: its names; discriminator: ``d_<name>``), ``lr``, ``grad_norm``,
            ``d_grad_norm``, ``adversarial`` (1 when the adversarial term was on), as floats.
        """
        from mould.models.losses import discriminator_losses, generator_losses

        discriminator = self.discriminator
        self.time_fraction = time_fraction
        adversarial = discriminator is not None and self.config.adversarial_on(step, time_fraction)
        lr = self.optimizer.param_groups[0]["lr"]
        image = batch["image"].contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        if discriminator is not None:
            discriminator.requires_grad_(False)  # the generator's step must not touch it
        with train_setup.autocast(self.precision, self.device):
            # Losses take float32 maps: in bf16 a 3 m depth has 1.6 cm steps, and the normal loss
            # differentiates millimetres (mould.models.depth converts the reference to the maps' dtype).
            predictions = [{k: v.float() for k, v in stack.items()} for stack in self.net(image)]
            losses = generator_losses(predictions, batch, self.loss_config, discriminator if adversarial else None)
        self.scaler.scale(losses["total"]).backward()
        norm = self._clip_and_step(self.optimizer, self.scaler, self.model, step)
        self.scheduler.step()
        values = {name: float(value.detach().float()) for name, value in losses.items()}
        values.update(lr=lr, grad_norm=norm, adversarial=float(adversarial))
        if adversarial:
            discriminator.requires_grad_(True)
            detached = [{k: v.detach() for k, v in stack.items()} for stack in predictions]
            self.d_optimizer.zero_grad(set_to_none=True)
            with train_setup.autocast(self.precision, self.device):
                d_losses = discriminator_losses(discriminator, detached, batch, self.loss_config)
            self.d_scaler.scale(d_losses["total"]).backward()
            dist_tools.average_gradients(self.processes, discriminator)
            values["d_grad_norm"] = self._clip_and_step(self.d_optimizer, self.d_scaler, discriminator, step)
            self.d_scheduler.step()
            dist_tools.broadcast_buffers(self.processes, discriminator)  # spectral-norm vectors
            values.update({f"d_{name}": float(value.detach().float()) for name, value in d_losses.items()})
        return values

    def _clip_and_step(self, optimizer, scaler, module: torch.nn.Module, step: int) -> float:
        """Unscale, clip and step; returns the gradient norm before clipping.

        A non-finite gradient skips the update; every rank agrees, since gradients are already averaged.
        """
        scaler.unscale_(optimizer)
        limit = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), limit))
        if scaler.is_enabled():
            scaler.step(optimizer)  # skips non-finite steps itself and lowers the scale
            scaler.update()
            return norm
        if math.isfinite(norm):
            optimizer.step()
            self._bad_steps = 0
            return norm
        self._bad_steps += 1
        log.warning("step %d: non-finite gradient, update skipped", step + 1)
        if self._bad_steps >= DIVERGED_AFTER:
            raise MouldError(
                f"training diverged: {DIVERGED_AFTER} steps in a row with non-finite gradients at step "
                f"{step + 1}; lower --lr"
            )
        return norm

    def state_dict(self) -> dict:
        """The :data:`STATE_KEYS` (plain tensors, numbers and containers; None where there is no
        discriminator)."""
        d = self.discriminator is not None
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": {"generator": self.scaler.state_dict(), "discriminator": self.d_scaler.state_dict()},
            "discriminator": self.discriminator.state_dict() if d else None,
            "d_optimizer": self.d_optimizer.state_dict() if d else None,
            "d_scheduler": self.d_scheduler.state_dict() if d else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (the generator's weights are loaded separately).

        Raises:
            ValueError: the state does not fit (a discriminator on one side only).
            RuntimeError, KeyError: from torch, for mismatched shapes or keys.
        """
        if (state["discriminator"] is None) != (self.discriminator is None):
            raise ValueError("the discriminator is present on one side only")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"]["generator"])
        self.d_scaler.load_state_dict(state["scaler"]["discriminator"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])
            self.d_scheduler.load_state_dict(state["d_scheduler"])
