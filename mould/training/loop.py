"""The training loop of ``mould train``: data, steps, logging, validation, checkpoints, resume.

Each step draws one batch (:mod:`mould.training.sampler`) and hands it to the :class:`~mould.training.updater.
Updater` (generator, then discriminator once the adversarial warm-up is over). Rank 0 alone writes the
run folder (:mod:`mould.training.state`, :mod:`mould.training.run_log`, :mod:`mould.training.run_info`).

Reproducibility: on CPU a run is a pure function of its options and seed; a resumed run restores weights,
optimisers, schedulers, gradient scalers, every process's RNG states and the data position, so it ends
with the same weights as an uninterrupted run. SIGINT or SIGTERM stop the run after the current step with
a checkpoint (a second signal stops at once); a SIGKILL loses the steps since the last checkpoint.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from mould.errors import InputError
from mould.evaluation.predictions import predict_batch, to_device
from mould.training import distributed as dist_tools
from mould.training import run_info
from mould.training import setup as train_setup
from mould.training.config import TrainConfig
from mould.training.fetch import BatchFetcher, DataFailure
from mould.training.run_log import RunLog, RunningMeans, file_log
from mould.training.state import (
    STATE_FORMAT,
    capture_rng,
    latest_checkpoint,
    remove_stale_temporaries,
    save_training_checkpoint,
)
from mould.training.stop_signals import StopSignals
from mould.training.updater import Updater
from mould.training.validation import Validator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or interrupted) run reached.

    Attributes:
        run_dir: the run folder. step: steps done. checkpoint: the latest ``.safetensors`` (None on ranks
        other than 0). elapsed_s: training wall time over all sessions. steps_per_s: this session's mean
        training speed (validation and checkpoints excluded). validation: the last ``val/...`` scores.
        interrupted: stopped by a signal before ``steps``. rank: this process's rank (0 writes the files).
    """

    run_dir: Path
    step: int
    checkpoint: Path | None
    elapsed_s: float
    steps_per_s: float
    validation: dict[str, float]
    interrupted: bool
    rank: int = 0


def train(config: TrainConfig) -> TrainResult:
    """Train (or resume) the run ``config.out``; see the module docstring.

    Raises:
        InputError: bad data, an unknown config, ``--resume`` without a checkpoint, an incompatible
            checkpoint, or a new run in a folder that already holds one.
    """
    processes = dist_tools.start_processes(config.device)
    threads = torch.get_num_threads()
    try:
        result = Trainer(config, processes).run()
        # Every rank done with its collectives before any tears the group down: a gloo rank whose peer
        # destroyed the group mid-exchange aborted at exit ("terminate called without an active exception").
        dist_tools.barrier(processes)
        return result
    finally:
        torch.set_num_threads(threads)  # the caller's setting, which Trainer changed for the run
        dist_tools.stop_processes(processes)


class Trainer:
    """One training process: builds everything in ``__init__``, trains in :meth:`run`."""

    def __init__(self, config: TrainConfig, processes: dist_tools.Processes) -> None:
        from mould.models.configs import LossConfig
        from mould.models.hourglass import build_model

        self.config, self.processes, self.device = config, processes, processes.device
        self.run_dir = Path(config.out)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise InputError(f"--out: {self.run_dir} is a file, not a folder")
        existing = latest_checkpoint(self.run_dir) if self.run_dir.is_dir() else None
        if config.resume and existing is None:
            raise InputError(f"--resume: {self.run_dir} holds no checkpoint (checkpoints/latest is missing)")
        if not config.resume and existing is not None:
            raise InputError(f"--out: {self.run_dir} already holds a run; add --resume to continue it")
        self.threads = dist_tools.cpu_threads(processes, config.threads)
        self.workers = dist_tools.loader_workers(processes, config.workers)
        torch.set_num_threads(self.threads)
        self.model_config = train_setup.model_config_named(config.model)
        try:
            weights = LossConfig.parse_overrides(config.loss)
            if config.adversarial_weight is not None:
                weights["adversarial"] = config.adversarial_weight
            if config.trainable == "back":
                weights["adversarial"] = 0.0  # the discriminator judges depth, which does not move
            self.loss_config = LossConfig.for_model(self.model_config, **weights)
        except ValueError as error:
            raise InputError(str(error) if str(error).startswith("--loss") else f"--loss: {error}") from None
        self.precision = train_setup.resolve_precision(config.precision, self.device)
        self.data = train_setup.open_training_data(config, self.model_config.input_multiple, self.device)
        self.validator = None
        if config.val is not None and processes.main:
            self.validator = Validator(config.val, config.val_samples, config.val_meshes, config.val_mesher)

        train_setup.seed_everything(config.seed)  # the same initial weights on every rank
        self.model = build_model(self.model_config).to(self.device, memory_format=torch.channels_last)
        self.discriminator = None
        if self.loss_config.adversarial > 0:
            from mould.models.discriminator import build_discriminator

            self.discriminator = build_discriminator(self.model_config).to(
                self.device, memory_format=torch.channels_last
            )
        train_setup.seed_everything(config.seed + 1 + processes.rank)  # per-rank streams from here on
        self.updater = Updater(self.model, self.discriminator, self.loss_config, config, self.precision, processes)
        self.step, self.consumed, self.elapsed_before = 0, 0, 0.0
        self._saved_step = -1  # the step of the last checkpoint this session wrote or resumed from
        self._rng_to_restore = None
        if config.resume:
            self._resume(existing)
        elif config.init is not None:
            self._initialise(config.init)
        if config.trainable == "back":
            from mould.models.hourglass import train_back_branch_only

            train_back_branch_only(self.model)  # before DDP wraps it: DDP needs the final requires_grad
        self.updater.distribute()
        self.signals = StopSignals(announce=processes.main)
        self.validation: dict[str, float] = {}

    # -- setup ----------------------------------------------------------------------------------------------
    def _initialise(self, weights: Path) -> None:
        from mould.models.checkpoint import load_weights_for

        state, metadata = load_weights_for(weights, self.model_config, " for --init", widen=True)
        self.model.load_state_dict(state)
        if self.processes.main:
            log.info("starting from %s (trained %s steps)", weights, metadata.get("step", "?"))

    def _resume(self, weights: Path) -> None:
        from mould.models.checkpoint import load_weights_for
        from mould.training.state import load_training_state, state_path

        state = load_training_state(state_path(weights))
        loaded, _ = load_weights_for(weights, self.model_config)
        try:
            self.model.load_state_dict(loaded)
            self.updater.load_state_dict(state)
        except (RuntimeError, ValueError, KeyError) as error:
            raise InputError(f"{weights}: incompatible checkpoint ({str(error).splitlines()[0]})") from None
        self.step, self.consumed, self.elapsed_before = state["step"], state["consumed"], state["elapsed_s"]
        self._saved_step = self.step
        if state["world_size"] == self.processes.world_size:
            self._rng_to_restore = state["rng"][self.processes.rank]
        else:
            log.warning(
                "the checkpoint was written by %d processes, this run has %d: RNG streams restart",
                state["world_size"],
                self.processes.world_size,
            )
        saved = run_info.read_run_info(self.run_dir).get("train_config", {})
        changed = sorted(k for k, v in self._config_dict().items() if k != "resume" and saved.get(k, v) != v)
        if changed and self.processes.main:
            log.warning("resuming with options changed since the checkpoint: %s", ", ".join(changed))
        if self.processes.main:
            log.info("resuming %s at step %d", weights, self.step)

    def _config_dict(self) -> dict:
        return json.loads(self.config.to_json())

    def _batches(self) -> BatchFetcher:
        from mould.training.sampler import StepBatchSampler

        config, processes = self.config, self.processes
        sampler = StepBatchSampler(
            len(self.data.dataset), config.batch_size, config.steps - self.step, seed=config.seed,
            start=self.consumed, rank=processes.rank, world_size=processes.world_size,
        )  # fmt: skip
        cuda = self.device.type == "cuda"
        fetcher = BatchFetcher(self.data.dataset, sampler, self.workers, cuda, config.seed, self.data.collate)
        return self.data.batches(fetcher, self.device)

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        config, main = self.config, self.processes.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
            if not config.resume:  # a run killed before its first checkpoint left nothing to keep
                (self.run_dir / run_info.RUN_FILE).unlink(missing_ok=True)
        # A new run drops every figure a killed predecessor logged (resume_step 0); a resumed one, those
        # logged after its checkpoint.
        self.runlog = RunLog(self.run_dir, resume_step=self.step) if main else None
        with file_log(self.run_dir if main else None):
            self.session = {
                "id": uuid.uuid4().hex[:12],
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "first_step": self.step,
                "command": run_info.command_line(),
                "processes": self.processes.world_size,
            }
            self.session_start = time.perf_counter()
            self.train_seconds, self.session_steps = 0.0, 0
            self._write_info("running")
            if main and not config.resume and self.runlog:
                self.runlog.text("config", f"```\n{config.to_json()}\n{self.model_config.to_json()}\n```")
            try:
                with self.signals:
                    interrupted = self._loop()
            finally:
                if self.runlog:
                    self.runlog.close()
            difference = dist_tools.replica_difference(self.processes, self.model)
            self._write_info("interrupted" if interrupted else "finished", replica_difference=difference)
        checkpoint = latest_checkpoint(self.run_dir) if main else None
        return TrainResult(
            self.run_dir,
            self.step,
            checkpoint,
            self._elapsed(),
            self._speed(),
            self.validation,
            interrupted,
            self.processes.rank,
        )

    def _loop(self) -> bool:
        from mould.progress import progress_bar

        config, processes = self.config, self.processes
        if self._rng_to_restore is not None:
            from mould.training.state import restore_rng

            restore_rng(self._rng_to_restore)  # last, so nothing between here and the first step draws
        fraction = self._time_fraction()
        if self.step >= config.steps or fraction >= 1:
            if processes.main:
                log.info("the run is already at step %d of %d (%.0f s of training)", self.step, config.steps,
                         self._elapsed())  # fmt: skip
            return False
        total = config.steps if config.time_limit is None else None  # a time limit: no bar length, no ETA
        bar = progress_bar(
            total=total, initial=self.step, disable=not processes.main, unit="step", dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0, desc="train",
        )  # fmt: skip
        means = RunningMeans()
        interval_start, interval_steps, data_seconds = time.perf_counter(), 0, 0.0
        fetcher = self._batches()
        stop, failure, done = False, None, False  # done: at --steps or out of --time-limit
        try:
            while not done and not stop:
                started = time.perf_counter()
                try:
                    batch = next(fetcher)
                except DataFailure as error:
                    # A worker raised or died (its signals are ignored, but SIGKILL cannot be). Under
                    # torchrun the ranks may not agree on this step, so only a single process saves here.
                    if not processes.distributed and self._saved_step != self.step:
                        self._save()
                    stop, failure = True, None if self.signals.count else error  # a signal's stop, or bad data
                    break
                fetched = time.perf_counter()
                batch = to_device(batch, self.device)
                skipped = float(batch.pop("skipped").sum()) if "skipped" in batch else 0.0
                values = {**self.updater.step(batch, self.step, fraction), "skipped_samples": skipped}
                self.step += 1
                self.consumed += config.batch_size * processes.world_size
                step_seconds = time.perf_counter() - started
                self.train_seconds += step_seconds
                self.session_steps += 1
                data_seconds += fetched - started
                interval_steps += 1
                means.add(values)
                bar.update(1)
                bar.set_postfix(loss=f"{values['total']:.4f}", lr=f"{values['lr']:.2e}", refresh=False)
                fraction = self._time_fraction()
                done = self.step >= config.steps or fraction >= 1
                if self.step % config.log_every == 0 or done:
                    wall = max(time.perf_counter() - interval_start, 1e-9)
                    figures = {f"train/{k}": v for k, v in means.pop().items()}
                    figures["train/steps_per_s"] = interval_steps / wall
                    figures["train/data_wait_fraction"] = data_seconds / wall
                    if self.runlog:
                        self.runlog.scalars(self.step, self._elapsed(), figures)
                    interval_start, interval_steps, data_seconds = time.perf_counter(), 0, 0.0
                stop = dist_tools.any_rank(processes, self.signals.count > 0)
                if self.step % config.val_every == 0 or done:
                    self._validate(batch)
                    interval_start = time.perf_counter()
                if self.step % config.ckpt_every == 0 or done or stop:
                    self._save()
                    interval_start = time.perf_counter()
        finally:
            bar.close()
            fetcher.close()
        if failure is not None:
            self._write_info("failed")
            raise failure.stopped_at(self.step, saved=self._saved_step == self.step)
        if done and self.step < config.steps and processes.main:
            log.info("time limit: stopped at step %d after %.0f s of training", self.step, self._elapsed())
        if stop and not done and processes.main:
            log.warning("interrupted: stopped at step %d with a checkpoint; --resume continues", self.step)
        return not done

    # -- validation, checkpoints, records -------------------------------------------------------------------
    def _validate(self, batch: dict[str, torch.Tensor]) -> None:
        if not self.processes.main:
            return
        from mould.evaluation.pictures import batch_row, grid

        context = train_setup.autocast(self.precision, self.device)
        # The last training batch, scored in evaluation mode: compare with val/ to see over-fitting.
        self.model.eval()
        try:
            predicted, scores = predict_batch(self.model, batch, context)
        finally:
            self.model.train(self.config.trainable == "all")  # the back-only run stays in eval mode
        figures = {f"train_batch/{k}": float(v.float().nanmean()) for k, v in scores.items()}
        picture = grid([batch_row(batch, predicted, i) for i in range(min(4, len(batch["image"])))])
        if self.validator is not None:
            result = self.validator.run(self.model, self.device, context)
            figures.update(result.scores)
            self.validation = result.scores
            picture_tag, picture = "val/predictions", result.picture
        else:
            picture_tag = "train/predictions"
        self.runlog.scalars(self.step, self._elapsed(), figures)
        self.runlog.image(self.step, picture_tag, picture)
        shown = ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in figures.items() if k.startswith("val/"))
        log.info("step %d: %s", self.step, shown or "no validation folder (--val): training-batch scores only")

    def _save(self) -> None:
        rng = dist_tools.gather_objects(self.processes, capture_rng())
        self._saved_step = self.step
        if not self.processes.main:
            return
        state = {
            "format": STATE_FORMAT,
            "step": self.step,
            "consumed": self.consumed,
            "elapsed_s": self._elapsed(),
            "world_size": self.processes.world_size,
            "model_config": self.model_config.to_json(),
            "train_config": self.config.to_json(),
            **self.updater.state_dict(),
            "rng": rng,
        }
        metadata = {"train_config": self.config.to_json(), "elapsed_s": f"{self._elapsed():.1f}"}
        save_training_checkpoint(
            self.run_dir, self.step, self.model, self.model_config, state, metadata, self.config.keep_checkpoints
        )
        self._write_info("running")

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.session_start)

    def _time_fraction(self) -> float:
        """The share of ``--time-limit`` spent (0 without one), in [0, 1], by rank 0's clock on every rank: the
        ranks must follow the same learning rate and stop at the same step (a collective under torchrun)."""
        limit = self.config.time_limit
        if limit is None:
            return 0.0
        return dist_tools.main_value(self.processes, min(self._elapsed() / limit, 1.0))

    def _speed(self) -> float:
        return self.session_steps / self.train_seconds if self.train_seconds else 0.0

    def _write_info(self, status: str, **extra) -> None:
        if not self.processes.main:
            return
        from mould.models.hourglass import count_parameters

        val = (
            None
            if self.validator is None
            else {"path": str(self.config.val), "samples": len(self.validator.indices)}
        )
        run_info.update_run_info(
            self.run_dir,
            {**self.session, "last_step": self.step, "steps_per_s": round(self._speed(), 4)},
            train_config=self._config_dict(),
            model_config=json.loads(self.model_config.to_json()),
            parameters=count_parameters(self.model),
            data=self.data.folders,
            resolution=self.data.resolution,
            val=val,
            environment={
                **run_info.environment(self.device, self.processes.world_size, self.threads, self.precision),
                "loader_workers": self.workers,
            },
            status=status,
            step=self.step,
            samples_seen=self.consumed,
            elapsed_s=round(self._elapsed(), 1),
            **({"last_validation": self.validation} if self.validation else {}),
            **extra,
        )
