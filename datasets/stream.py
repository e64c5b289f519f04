"""Fresh synthetic samples as training data: ``mould train --data synth[@RES][:WEIGHT]``.

:class:`SynthStream` is a map-style dataset without end: item ``i`` of epoch ``e`` is the sample of draw
``e * len + i`` of the stream seeded ``STREAM_SEED_OFFSET + run seed``, so every position a run consumes is
its own sample (never shown twice), and a resumed run, which restarts from the number of positions consumed,
continues the same stream. Mixed with folders (:class:`mould.datasets.mixing.MixedDataset`), a synthetic
item is keyed by its position in the mix, which is unique too.

Two ways to make the samples:

- **records** (training on a CPU): the data workers generate whole samples on the CPU;
- **draws** (training on a GPU): the data workers only draw the samples' random choices; the training process
  renders each batch's draws on the GPU in a background thread with its own CUDA stream
  (:class:`DeviceBatches`), so the next batch is ready when the step wants it.

Synthetic records are not augmented: each one is new, and the generator already jitters the crop, the
light and the colours.
"""

from __future__ import annotations

import collections
import contextlib
import re
from pathlib import Path

import torch
from mould.datasets.records import mould_to_record

from mould.errors import InputError

STREAM_SEED_OFFSET = 1 << 32
"""Streamed samples use dataset seed ``offset + run seed``, so they never repeat a ``mould synth --seed S``
folder (validation sets included)."""
STREAM_LENGTH = 1 << 20
"""Items per epoch of a stream (epochs only number the draws: item i of epoch e is draw e * length + i)."""
_SPEC = re.compile(r"^synth(?:@(\d+))?$")


def parse_stream_spec(path: Path) -> int | None:
    """The resolution named by a ``--data`` item ``synth`` or ``synth@RES`` (0: not given), or None when
    the item is a folder."""
    match = _SPEC.match(str(path))
    if not match:
        return None
    return int(match.group(1) or 0)


class SynthStream(torch.utils.data.Dataset):
    """The endless stream of synthetic samples of a run (see the module docstring).

    Args:
        seed: the run's seed.
        config: generation settings (a :class:`mould.datasets.synthetic.SynthConfig`).
        mode: ``"records"`` (generate here, on the CPU) or ``"draws"`` (return the draws, to be rendered
            on a device by :class:`DeviceBatches`).
    """

    endless = True

    def __init__(self, seed: int, config, mode: str = "records") -> None:
        if mode not in ("records", "draws"):
            raise ValueError(f"mode: expected records or draws, got {mode!r}")
        self.seed = STREAM_SEED_OFFSET + int(seed)
        self.config, self.mode, self.epoch = config, mode, 0

    def __len__(self) -> int:
        return STREAM_LENGTH

    def __repr__(self) -> str:
        return f"SynthStream(seed={self.seed}, resolution={self.config.resolution}, {self.mode})"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        return self.draw(self.epoch * STREAM_LENGTH + int(index))

    def draw(self, key: int) -> dict:
        """Sample ``key`` of the stream: a training record, or ``{"draw": SceneDraw}`` in draws mode."""
        from mould.datasets.scenes import draw_scene
        from mould.datasets.synthetic import render_draws

        draw = draw_scene(self.seed, key, self.config)
        if self.mode == "draws":
            return {"draw": draw}
        mould, _, _ = render_draws([draw], self.config)[0]
        record = mould_to_record(mould)
        record["skipped"] = torch.tensor(0)
        return record


def collate(items: list[dict]) -> dict:
    """Collate training records, and keep draws aside: ``{"draws": [...], "slots": [...]}`` are the positions
    of the draws in the batch, to be rendered by :class:`DeviceBatches`."""
    records = [(i, item) for i, item in enumerate(items) if "draw" not in item]
    draws = [(i, item["draw"]) for i, item in enumerate(items) if "draw" in item]
    if not draws:
        return torch.utils.data.default_collate(items)
    batch = torch.utils.data.default_collate([item for _, item in records]) if records else {}
    return {
        **batch,
        "record_slots": torch.tensor([i for i, _ in records], dtype=torch.int64),
        "draws": [draw for _, draw in draws],
        "draw_slots": torch.tensor([i for i, _ in draws], dtype=torch.int64),
    }


def render_records(draws: list, config, device: torch.device) -> dict[str, torch.Tensor]:
    """Collated training records (on ``device``) of draws rendered there, as ``mould_to_record`` makes them."""
    from mould.datasets.synthetic import dress_and_render

    _, rendered = dress_and_render(draws, config, device)
    hits, count = rendered.hits, len(draws)

    def channels(image: torch.Tensor) -> torch.Tensor:
        return image.permute(0, 3, 1, 2).float().contiguous()

    return {
        "image": channels(rendered.image) / 255.0,
        "visible": hits.visible.float()[:, None],
        "hidden": hits.hidden.float()[:, None],
        "mask": hits.mask.float()[:, None],
        "visible_normals": channels(hits.visible_normals),
        "hidden_normals": channels(hits.hidden_normals),
        "has_normals": torch.ones(count, dtype=torch.bool, device=device),
        "back": channels(rendered.back_image) / 255.0,
        "has_back": torch.ones(count, dtype=torch.bool, device=device),
        "intrinsics": rendered.intrinsics.float(),
        "perspective": torch.ones(count, dtype=torch.bool, device=device),
        "cam_to_world": rendered.cam_to_world.float(),
        "skipped": torch.zeros(count, dtype=torch.int64, device=device),
    }


def merge(batch: dict, config, device: torch.device) -> dict[str, torch.Tensor]:
    """One batch on ``device``: the collated records and the rendered draws, each back in its slot."""
    if "draws" not in batch:
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    rendered = render_records(batch["draws"], config, device)
    draw_slots, record_slots = batch["draw_slots"].to(device), batch["record_slots"].to(device)
    size = len(draw_slots) + len(record_slots)
    out = {}
    for key, value in rendered.items():
        full = torch.empty((size, *value.shape[1:]), dtype=value.dtype, device=device)
        full.index_copy_(0, draw_slots, value)
        if len(record_slots):
            full.index_copy_(0, record_slots, batch[key].to(device, non_blocking=True).to(value.dtype))
        out[key] = full
    return out


class DeviceBatches:
    """Batches made ready on a device ahead of the steps: synthetic draws rendered there by a background
    thread while the training step runs.

    Raw batches are fetched in the calling thread (the training loop's, where data-worker failures are
    watched); each is merged on the device by one background thread, on its own CUDA stream, and handed to
    the consuming stream safely. ``next`` raises what fetching or rendering raised.

    Args:
        batches: yields collated batches (:func:`collate`); closed by :meth:`close` when it has ``close``.
        config: the stream's generation settings.
        device: where batches go.
        depth: batches in flight.
    """

    def __init__(self, batches, config, device: torch.device, depth: int = 2) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.source, self.batches = batches, iter(batches)
        self.config, self.device, self.depth = config, device, depth
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="synth-batches")
        self.flight: collections.deque = collections.deque()
        self.exhausted = False

    def _render(self, batch: dict):
        with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
            ready = merge(batch, self.config, self.device)
            event = torch.cuda.Event() if self.stream is not None else None
            if event is not None:
                event.record(self.stream)
        return ready, event

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        while not self.exhausted and len(self.flight) < self.depth:
            try:
                batch = next(self.batches)
            except StopIteration:
                self.exhausted = True
                break
            self.flight.append(self.pool.submit(self._render, batch))
        if not self.flight:
            raise StopIteration
        ready, event = self.flight.popleft().result()
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for value in ready.values():
                value.record_stream(current)
        return ready

    def close(self) -> None:
        """Stop rendering (the batch in progress finishes) and close the batches' source."""
        for future in self.flight:
            future.cancel()
        self.pool.shutdown(wait=True)
        if hasattr(self.source, "close"):
            self.source.close()


def open_stream(resolution: int, seed: int, device: torch.device, backgrounds: Path | None = None) -> SynthStream:
    """The stream of a run: draws on a GPU, records on a CPU; its backgrounds are crops of the photos in
    the folder ``backgrounds`` (procedural when None).

    Raises:
        InputError: a resolution the generator cannot make, or a backgrounds folder without images.
    """
    from mould.datasets.backdrops import background_images
    from mould.datasets.synthetic import SynthConfig

    images = background_images(backgrounds) if backgrounds is not None else ()
    try:
        config = SynthConfig(resolution=resolution, backgrounds=images)
    except ValueError as error:
        raise InputError(f"--data synth@{resolution}: {error}") from None
    return SynthStream(seed, config, mode="draws" if device.type == "cuda" else "records")
