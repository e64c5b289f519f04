"""The double stacked hourglass (Newell et al., ECCV 2016) that predicts a mould from a crop.

Layout for a 256² crop (sides scale with the input, which must be a multiple of
``ModelConfig.input_multiple``, 64 for depth-4 hourglasses)::

    image 256² ─ 3x3 conv ─────────────────────────────────────────────── full skip (256², full_features)
        └─ 7x7 stride-2 conv ─ residual ──────────────────────────────── half skip (128², stem_features)
                                   └─ max-pool ─ residual ─ x (64², features)
    for each stack:  x ─ hourglass(depth 4: 64² → 4² → 64²) ─ residual ─ 1x1 ─ y
                     coarse = 1x1(y)        3 maps at 64²: visible, thickness, mask logits (+ back RGB)
                     maps   = up4(coarse) + head(y, half skip, full skip)        the maps at 256²
                     x      = x + 1x1(y) + 1x1(coarse)     (all stacks but the last)

The head is the learned upsampling: 2x2 stride-2 transposed convolutions with additive skips from the stem,
and a 3x3 convolution at each resolution; it refines the bilinearly upsampled coarse maps, so the coarse
maps (which are what is fed back to the next stack) are real predictions.

Outputs are in the relative depth parametrisation of :mod:`mould.models.depth`; with
``hidden="thickness"`` the hidden map is ``visible + softplus(raw)``: a body is never thinner than zero,
and the network need not learn that constraint. With ``back_colour`` the network also predicts the colour
of the hidden surface, ``"back"``, RGB in [0, 1]: three more output channels of every stack, or with
``back_branch`` a :class:`BackBranch` beside the last stack::

    back = BackBranch(y of the last stack, image)     a gate between the front's colour and a smooth one
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from mould.models.configs import ModelConfig, model_config
from torch import nn

from mould.errors import InputError


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, *, bias: bool = False) -> nn.Conv2d:
    """A 'same'-padded convolution, without bias by default: every convolution of the network but the two
    output layers feeds a BatchNorm (directly, or through sums, skips, pooling and resampling, which carry
    a per-channel constant unchanged), and BatchNorm cancels any per-channel constant, so such a bias would
    never learn (its true gradient is exactly zero)."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=bias)


class Residual(nn.Module):
    """Pre-activation bottleneck block: BN-ReLU-1x1 (halve), BN-ReLU-3x3, BN-ReLU-1x1, plus a skip
    (1x1 convolution when the width changes)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = max(cout // 2, 1)
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            _conv(cin, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            _conv(mid, mid, 3),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            _conv(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """A recursive hourglass: an upper branch at this resolution, a lower branch through max-pool, a
    smaller hourglass (or a residual block at the bottom), and nearest upsampling, summed."""

    def __init__(self, depth: int, features: int) -> None:
        super().__init__()
        self.upper = Residual(features, features)
        self.down = Residual(features, features)
        self.inner = Hourglass(depth - 1, features) if depth > 1 else Residual(features, features)
        self.up = Residual(features, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lower = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.upper(x) + F.interpolate(lower, scale_factor=2.0, mode="nearest")


class Head(nn.Module):
    """Learned upsampling from 1/4 to full resolution with additive skips from the stem."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        half, full = config.head_features, config.full_features
        self.reduce = nn.Sequential(_conv(config.features, half, 1), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.up_half = nn.ConvTranspose2d(half, half, 2, stride=2, bias=False)
        self.skip_half = _conv(config.stem_features, half, 1)
        self.fuse_half = nn.Sequential(
            nn.BatchNorm2d(half), nn.ReLU(inplace=True), _conv(half, half, 3), nn.BatchNorm2d(half), nn.ReLU()
        )
        self.up_full = nn.ConvTranspose2d(half, full, 2, stride=2, bias=False)
        self.fuse_full = nn.Sequential(
            nn.BatchNorm2d(full), nn.ReLU(inplace=True), _conv(full, _channels(config), 3, bias=True)
        )

    def forward(
        self, features: torch.Tensor, coarse: torch.Tensor, skip_half: torch.Tensor, skip_full: torch.Tensor
    ) -> torch.Tensor:
        x = self.fuse_half(self.up_half(self.reduce(features)) + self.skip_half(skip_half))
        x = self.fuse_full(self.up_full(x) + skip_full)
        return F.interpolate(coarse, scale_factor=4.0, mode="bilinear", align_corners=False) + x


class Stack(nn.Module):
    """One hourglass stack with its coarse predictor and full-resolution head."""

    def __init__(self, config: ModelConfig, last: bool) -> None:
        super().__init__()
        f = config.features
        self.hourglass = Hourglass(config.hourglass_depth, f)
        self.after = nn.Sequential(Residual(f, f), _conv(f, f, 1), nn.BatchNorm2d(f), nn.ReLU(inplace=True))
        self.coarse = _conv(f, _channels(config), 1, bias=True)
        self.head = Head(config)
        # Newell et al.: features and predictions are mapped back by 1x1 convolutions and added.
        self.remap_features = None if last else _conv(f, f, 1)
        self.remap_predictions = None if last else _conv(_channels(config), f, 1)


class BackBranch(nn.Module):
    """The colour of the hidden surface, beside the last stack and apart from depth and silhouette::

        back = g * sigmoid(logit(front) + r) + (1 - g) * sigmoid(c)

    ``front`` is the crop's colour at the pixel; the gate ``g`` and the correction ``r`` come from two 3x3
    convolutions at full resolution; ``c`` is a colour at 1/4 of the side, bilinearly upsampled, so smooth:
    where the gate closes (a face, a print on a shirt's front), none of the front's detail comes through.
    Under it, two 3x3 convolutions at 1/4 of the side read the last stack's features and the 4x4-pooled
    crop. No BatchNorm: trained alone on a frozen network, it has no statistics to keep apart. It starts
    with ``r = 0``, ``c`` grey and ``g`` = sigmoid(:data:`GATE_START`): mostly the front's colour (what the
    ``mirror`` texture paints)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = config.back_branch
        self.coarse = nn.Sequential(
            _conv(config.features + 3, width, 3, bias=True), nn.ReLU(inplace=True),
            _conv(width, width, 3, bias=True), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.colour = _conv(width, 3, 1, bias=True)
        self.fine = nn.Sequential(
            _conv(width + 3, width, 3, bias=True), nn.ReLU(inplace=True), _conv(width, 4, 3, bias=True)
        )
        nn.init.zeros_(self.colour.weight)
        nn.init.zeros_(self.colour.bias)
        nn.init.zeros_(self.fine[-1].weight)
        with torch.no_grad():
            self.fine[-1].bias.copy_(torch.tensor([GATE_START, 0.0, 0.0, 0.0]))

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, N, N) back colour, RGB in [0, 1], from (B, features, N/4, N/4) and the (B, 3, N, N) crop."""
        x = self.coarse(torch.cat([features, F.avg_pool2d(image, 4)], 1))
        colour = torch.sigmoid(
            F.interpolate(self.colour(x), scale_factor=4.0, mode="bilinear", align_corners=False)
        )
        x = F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)
        gate_and_correction = self.fine(torch.cat([x, image], 1))
        gate = torch.sigmoid(gate_and_correction[:, :1])
        corrected = torch.sigmoid(gate_and_correction[:, 1:] + front_logits(image))
        return gate * corrected + (1 - gate) * colour


GATE_START = 2.0
"""The back branch's initial gate logit: 88 % the front's colour, 12 % the (grey) smooth colour, so that
the smooth colour learns from the first steps."""


def front_logits(image: torch.Tensor) -> torch.Tensor:
    """logit of the crop's colour, clamped to [:data:`FRONT_CLAMP`, 1 - FRONT_CLAMP] (finite)."""
    front = image.clamp(FRONT_CLAMP, 1 - FRONT_CLAMP)
    return torch.log(front) - torch.log1p(-front)


class MouldNet(nn.Module):
    """Stacked hourglass predicting visible depth, hidden depth and silhouette logits from a crop.

    Build it with :func:`build_model`. ``forward(image)`` takes ``(B, 3, N, N)`` float RGB in [0, 1]
    (N = 256 for the trained models; any multiple of ``config.input_multiple`` works) and returns one
    dict per stack (the last is the final prediction) with ``"visible"``, ``"hidden"`` (relative depth,
    see :mod:`mould.models.depth`) and ``"mask_logits"``, each ``(B, 1, N, N)``, and with
    ``config.back_colour`` ``"back"``, ``(B, 3, N, N)`` RGB in [0, 1].
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        s, f = config.stem_features, config.features
        # No BatchNorm of its own: the skip is summed into the head's last stage, whose BatchNorm follows.
        self.stem_full = _conv(3, config.full_features, 3)
        self.stem_half = nn.Sequential(
            _conv(3, s, 7, stride=2), nn.BatchNorm2d(s), nn.ReLU(inplace=True), Residual(s, s)
        )
        self.stem_quarter = Residual(s, f)
        self.stacks = nn.ModuleList(Stack(config, last=i == config.stacks - 1) for i in range(config.stacks))
        self.back_branch = BackBranch(config) if config.back_colour and config.back_branch else None

    def _maps(
        self, raw: torch.Tensor, image: torch.Tensor, back: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The maps of one stack from its output layers' ``raw`` channels, and the branch's ``back`` colour."""
        visible, second, mask_logits = raw[:, 0:1], raw[:, 1:2], raw[:, 2:3]
        hidden = visible + F.softplus(second) if self.config.hidden == "thickness" else second
        maps = {"visible": visible, "hidden": hidden, "mask_logits": mask_logits}
        if self.config.back_colour and not self.config.back_branch:
            back = raw[:, 3:6]
            if self.config.back_from_front:  # a correction to the front's colour (ModelConfig.back_from_front)
                back = back + front_logits(image)
            maps["back"] = torch.sigmoid(back)
        elif back is not None:
            maps["back"] = back  # the branch's colour
        return maps

    def forward(self, image: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        multiple = self.config.input_multiple
        shape = tuple(int(size) for size in image.shape)  # plain ints: no tracer warnings during export
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or shape[2] % multiple:
            raise ValueError(f"image: expected (B, 3, N, N) with N a multiple of {multiple}, got {shape}")
        if self.stem_half[0].weight.is_contiguous(memory_format=torch.channels_last):
            image = image.contiguous(memory_format=torch.channels_last)
        skip_full = self.stem_full(image)
        skip_half = self.stem_half(image)
        x = self.stem_quarter(F.max_pool2d(skip_half, 2))
        outputs = []
        for stack in self.stacks:
            y = stack.after(stack.hourglass(x))
            coarse = stack.coarse(y)
            last = stack is self.stacks[-1]
            back = self.back_branch(y, image) if self.back_branch is not None and last else None
            outputs.append(self._maps(stack.head(y, coarse, skip_half, skip_full), image, back))
            if stack.remap_features is not None:
                x = x + stack.remap_features(y) + stack.remap_predictions(coarse)
        return outputs


def train_back_branch_only(model: MouldNet) -> None:
    """Freeze every weight but the :class:`BackBranch`'s and put the network in evaluation mode, so that a
    training run learns the back colour of a finished network and leaves its depths and silhouette bit for
    bit as they were (BatchNorm keeps its statistics; the branch has none).

    Raises:
        InputError: the network has no back-colour branch.
    """
    if model.back_branch is None:
        raise InputError(
            f"--trainable back: config {model.config.name!r} has no back-colour branch (ModelConfig.back_branch)"
        )
    model.requires_grad_(False)
    model.back_branch.requires_grad_(True)
    model.eval()


FRONT_CLAMP = 1 / 512
"""The front's colour is clamped to [1/512, 1 - 1/512] before its logit (finite; half an 8-bit level)."""


def _channels(config: ModelConfig) -> int:
    """Channels of a stack's output layers: every map's, but the back's where a branch makes it."""
    return sum(size for name, size in config.output_channels.items() if name != "back" or not config.back_branch)


def build_model(name_or_config: str | ModelConfig) -> MouldNet:
    """A freshly initialised network for a named config (``"paper"``, ``"small"``, ``"tiny"``) or a config.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    return MouldNet(model_config(name_or_config))


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, resolution: int = 256, batch: int = 1) -> int:
    """Floating-point operations of one forward pass on ``(batch, 3, resolution, resolution)``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode`: convolutions and matrix products, two
    per multiply-add; normalisations, activations and resampling are not counted (a few % here).
    """
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(batch, 3, resolution, resolution, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def add_back_colour(
    state: dict[str, torch.Tensor], config: ModelConfig, *, from_front: bool = True, branch: int = 0
) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The weights of a network without the back-colour head (``config.back_colour`` False), completed into
    the same network with it: fine-tuning a model trained before the head existed.

    The back colour's channels come after the depth and silhouette ones in every output layer, and in the
    input of each stack's ``remap_predictions``. They are added as zeros: the completed network predicts
    the same depths and silhouette as the old one (the zero input columns add nothing to the features), and
    until trained the front's colour as the back's (``from_front``, :attr:`ModelConfig.back_from_front`) or
    a uniform grey (sigmoid(0) = 0.5). With a ``branch``, the stacks keep their weights and the branch
    starts as :class:`BackBranch` initialises it (mostly the front's colour).

    Args:
        state: the old network's ``state_dict()``. config: its config.
        from_front: the completed config's ``back_from_front``. branch: its ``back_branch``.

    Returns:
        ``(state, config)`` of the completed network.

    Raises:
        ValueError: ``config`` already has the head.
        KeyError: ``state`` lacks a weight of ``config``'s network.
    """
    if config.back_colour:
        raise ValueError(f"config {config.name!r}: already predicts the back colour")
    new_config = dataclasses.replace(config, back_colour=True, back_from_front=from_front, back_branch=branch)
    completed = {}
    for name, template in MouldNet(new_config).state_dict().items():
        old = state.get(name) if not name.startswith("back_branch.") else template
        if old is None:
            raise KeyError(f"{name}: missing from the weights of config {config.name!r}")
        if old.shape == template.shape:
            completed[name] = old
            continue
        grown = torch.zeros(template.shape, dtype=old.dtype)
        grown[tuple(slice(0, size) for size in old.shape)] = old
        completed[name] = grown
    return completed, new_config


def widen_features(
    state: dict[str, torch.Tensor], config: ModelConfig, wider: ModelConfig
) -> dict[str, torch.Tensor]:
    """The weights of a network of ``config`` grown into one of ``wider``, a config that differs only by more
    hourglass ``features`` (``small`` into ``medium``), computing the same function: the wider network starts
    where the narrow one stopped instead of from nothing.

    Every tensor keeps the old weights in its leading block. A new channel gets a fresh initialisation of
    its own (from ``MouldNet(wider)``, so it learns), and the old channels read it through zero weights:
    convolutions' input columns of new channels are zero for old output channels. Channels never mix
    otherwise (BatchNorm, ReLU, pooling, resampling and the residual sums are per channel), so every old
    channel, and every output, is what it was (to rounding: the sums run over more, zero, terms). The back
    branch reads the features followed by the pooled crop: its crop columns move behind the new features.

    Args:
        state: the narrow network's ``state_dict()``. config: its config. wider: the target config.

    Returns:
        The ``state_dict`` of a ``MouldNet(wider)``.

    Raises:
        ValueError: ``wider`` differs from ``config`` by more than (more) features.
    """
    if dataclasses.replace(config, name=wider.name, features=wider.features) != wider:
        raise ValueError(f"config {wider.name!r}: differs from {config.name!r} by more than its features")
    if wider.features < config.features:
        raise ValueError(f"config {wider.name!r}: {wider.features} features, fewer than {config.features}")
    old_width, new_width = config.features, wider.features
    grown = {}
    for name, template in MouldNet(wider).state_dict().items():
        old = state[name]
        if old.shape == template.shape:
            grown[name] = old.clone()
            continue
        new = template.clone()
        if name == "back_branch.coarse.0.weight":  # columns: features, then the crop's 3 colours
            new[:, :old_width] = old[:, :old_width]
            new[:, new_width:] = old[:, old_width:]
            new[:, old_width:new_width] = 0
        else:
            new[tuple(slice(0, size) for size in old.shape)] = old
            if new.ndim == 4:  # a convolution (out, in, k, k): old outputs read nothing from new inputs
                new[: old.shape[0], old.shape[1] :] = 0
        grown[name] = new
    return grown
