"""Configurations of the network and of its losses: frozen dataclasses, validated on construction.

Three model sizes ship (:data:`CONFIGS`):

- ``paper``: 2 stacks of 256 features, the width of Newell et al.'s hourglass and of Moulding Humans.
- ``medium``: 2 stacks of 128 features and ``small``'s stem and heads: the capacity the default model can
  afford within ``mould reconstruct``'s CPU budget (measured: see its entry in :data:`CONFIGS`).
- ``small``: 2 stacks of 64 features, sized like the CPU calibration run of FACTS.md (~0.43 M parameters,
  1.3 GFLOPs at 256²); trains on a laptop CPU and is the model shipped in the package.
- ``tiny``: 2 stacks of 16 features, for tests (overfits four samples in seconds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_DEPTH_SCALE = 0.5
"""Metres per relative unit of depth (:mod:`mould.models.depth`): the order of a body's depth, so relative
depths are O(1)."""


HiddenKind = Literal["thickness", "free"]
HiddenTerm = Literal["hidden", "thickness", "detached"]
AdversarialKind = Literal["lsgan", "hinge"]
StackChoice = Literal["last", "all"]


_LARGEST = {
    "stacks": 16,  # Newell et al. found 8 the useful most
    "features": 4096,
    "hourglass_depth": 10,  # 4 x 2^10 = 4096, the largest crop side
    "stem_features": 4096,
    "head_features": 4096,
    "full_features": 4096,
    "discriminator_features": 4096,
    "discriminator_layers": 10,  # stride 2^10 = the largest crop side
}
"""Per-field sanity bounds, 16 times the ``paper`` config's widths and more; the parameter count a
checkpoint's config may ask for is bounded separately (:data:`mould.limits.LIMITS`)."""


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a :class:`~mould.models.hourglass.MouldNet` and its discriminator."""

    name: str = "custom"
    """A label stored in checkpoints; it does not select anything."""
    stacks: int = 2
    """Hourglass stacks; each predicts the three maps and feeds the next (intermediate supervision)."""
    features: int = 256
    """Channels of the hourglasses, which work at 1/4 of the input side (64² for a 256² crop)."""
    hourglass_depth: int = 4
    """Recursion depth of each hourglass: 64² down to 4² for a 256² crop."""
    stem_features: int = 64
    """Channels of the stem at 1/2 of the input side (7x7 stride-2 conv and a residual block); also the
    128² skip into the output heads."""
    head_features: int = 32
    """Channels of the output heads at 1/2 of the input side (128²)."""
    full_features: int = 16
    """Channels at the full input resolution (256²): the stem's full-resolution skip and the heads' last
    stage. Full-resolution convolutions dominate the cost of small models, hence the narrow width."""
    depth_scale: float = DEFAULT_DEPTH_SCALE
    """Metres per unit of the relative depth the network predicts (see :mod:`mould.models.depth`)."""
    hidden: HiddenKind = "thickness"
    """``"thickness"``: hidden = visible + softplus(raw), so hidden >= visible by construction;
    ``"free"``: the hidden map is predicted on its own (may cross the visible one)."""
    back_colour: bool = False
    """Also predict the colour of the hidden surface (an RGB map, ``"back"``), to texture the unseen back.
    False in configs written before it existed, so that their checkpoints still load."""
    back_from_front: bool = False
    """With ``back_colour``: the back is predicted as a correction to the crop's colour at the same pixel,
    ``sigmoid(raw + logit(image))``, so an untrained (zero) head paints the front's colour, as the
    ``mirror`` texture does, and training only has to learn where the back differs (a face, a print).
    False: ``sigmoid(raw)``, which starts grey; a 600-step fine-tune of that head learnt only a mean colour
    (models/weights/README.md). False in configs written before it existed."""
    back_branch: int = 0
    """With ``back_colour``: channels of a separate back-colour branch (:class:`~mould.models.hourglass.
    BackBranch`) that reads the last stack's features and the crop, and alone predicts the back, as a gate
    between a correction of the front's colour and a smooth colour of its own (``back_from_front`` then plays
    no part); 0: the back is three more output rows of every stack, in layers shared with depth and
    silhouette. A branch can be trained on its own on a finished network (``mould train --trainable back``),
    leaving its depth and silhouette bit-identical. 0 in configs written before it existed."""
    discriminator_features: int = 64
    """Channels of the discriminator's first layer (doubled at each stride-2 layer)."""
    discriminator_layers: int = 3
    """Stride-2 layers of the PatchGAN discriminator (3: 70x70 receptive field, as in pix2pix)."""

    def __post_init__(self) -> None:
        for name in (
            "stacks",
            "features",
            "hourglass_depth",
            "stem_features",
            "head_features",
            "full_features",
            "discriminator_features",
            "discriminator_layers",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
            if value > _LARGEST[name]:
                raise ValueError(f"{name}: expected at most {_LARGEST[name]}, got {value}")
        if self.features % 2 or self.stem_features % 2:
            raise ValueError("features, stem_features: expected even numbers (bottleneck blocks halve them)")
        if not isinstance(self.depth_scale, (int, float)) or not self.depth_scale > 0:
            raise ValueError(f"depth_scale: expected a positive number of metres, got {self.depth_scale!r}")
        if self.hidden not in ("thickness", "free"):
            raise ValueError(f"hidden: expected 'thickness' or 'free', got {self.hidden!r}")
        for name in ("back_colour", "back_from_front"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        branch = self.back_branch
        if not isinstance(branch, int) or isinstance(branch, bool) or not 0 <= branch <= _LARGEST["features"]:
            raise ValueError(f"back_branch: expected 0 to {_LARGEST['features']} channels, got {branch!r}")
        if branch and not self.back_colour:
            raise ValueError("back_branch: a back-colour branch needs back_colour")

    @property
    def output_channels(self) -> dict[str, int]:
        """Channels of each map the network predicts, in output order."""
        channels = {"visible": 1, "hidden": 1, "mask_logits": 1}
        return {**channels, "back": 3} if self.back_colour else channels

    @property
    def input_multiple(self) -> int:
        """Input sides must be multiples of this: the stem divides by 4, each hourglass level by 2."""
        return 4 * 2**self.hourglass_depth

    def to_json(self) -> str:
        """The config as a JSON object (:meth:`from_json` inverts it)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Parse :meth:`to_json`'s output; unknown or invalid fields raise ``ValueError``."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("model config: expected a JSON object")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model config: unknown fields {unknown}")
        return cls(**data)


CONFIGS: dict[str, ModelConfig] = {
    "paper": ModelConfig(
        name="paper",
        stacks=2,
        features=256,
        stem_features=64,
        head_features=32,
        full_features=16,
        back_colour=True,
        back_from_front=True,
        back_branch=32,
    ),
    # Between small and paper, chosen by measurement (issue #11; 2-core AMD EPYC VM, torch 2.13 CPU, 2 threads,
    # 256², batch 1, round-robin under load ~6): forward CPU time small 68 ms, features 96 83 ms, 128 108 ms,
    # 192 201 ms, paper 362 ms. `mould reconstruct` runs 2-4 forward passes a photo (small: 0.19 s end to end,
    # 138 ms of framing, at load ~1), so 128 features cost ~0.27 s a photo, inside the 0.3 s that needs no fast
    # mode; 192 features (~0.46 s) and paper (0.47-0.8 s) crowd or break the 0.5 s budget. Only the hourglasses
    # widen: the full-resolution stem and heads dominate a small model's cost, and widening them (32/32/16)
    # cost 1.8x the forward time for the same hourglasses. 3.9x small's parameters, 2.9x its FLOPs; a CPU
    # training step (128², batch 8) costs 1.6x small's. Since the outline snap and re-cut, measured whole:
    # `mould bench photos` median 0.72-0.73 s a photo against small's 0.55-0.56 s back to back (2026-11-30):
    # over the budget, so the GPU recipe trains small (docs/gpu-recipe.md).
    "medium": ModelConfig(
        name="medium",
        stacks=2,
        features=128,
        stem_features=16,
        head_features=16,
        full_features=8,
        discriminator_features=16,
        back_colour=True,
        back_from_front=True,
        back_branch=16,
    ),
    "small": ModelConfig(
        name="small",
        stacks=2,
        features=64,
        stem_features=16,  # the 128² stage is the costliest per channel: 16 saves 16 % of a training step
        head_features=16,
        full_features=8,
        # pix2pix's width 64 made the adversarial part cost more than the generator (1.5 of 2.3 CPU-s per
        # step at batch 8); 16 costs 0.6 CPU-s.
        discriminator_features=16,
        back_colour=True,
        back_from_front=True,
        back_branch=16,
    ),
    "tiny": ModelConfig(
        name="tiny",
        stacks=2,
        features=16,
        stem_features=8,
        head_features=8,
        full_features=4,
        discriminator_features=8,
        discriminator_layers=2,
        back_colour=True,
        back_from_front=True,
        back_branch=4,
    ),
}
"""The named model sizes; see the module docstring."""


def model_config(name_or_config: str | ModelConfig) -> ModelConfig:
    """A config given by name (a key of :data:`CONFIGS`) or as itself.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if isinstance(name_or_config, ModelConfig):
        return name_or_config
    if isinstance(name_or_config, str) and name_or_config in CONFIGS:
        return CONFIGS[name_or_config]
    raise ValueError(f"model config: unknown name {name_or_config!r}; known: {', '.join(CONFIGS)}")


@dataclass(frozen=True)
class LossConfig:
    """Weights and options of the training losses (:mod:`mould.models.losses`).

    The reconstruction terms are summed over the stacks (intermediate supervision), the last stack with
    weight 1 and the others with ``intermediate``; the normal term applies to ``normal_stacks`` and the
    adversarial term judges the last stack only.
    """

    visible: float = 1.0
    """Masked L1 on the visible depth, relative units (metres / ``depth_scale``)."""
    hidden: float = 1.0
    """Masked L1 on the hidden depth, relative units (what it compares: ``hidden_term``)."""
    hidden_term: HiddenTerm = "hidden"
    """What the hidden L1 compares: ``"hidden"`` (the hidden maps; with ``hidden = visible + thickness``
    its gradient also drags the visible map), ``"thickness"`` (hidden - visible against the true thickness)
    or ``"detached"`` (the hidden map with the visible part detached): the last two leave the visible map
    to the visible term."""
    coarse: float = 0.0
    """Weight of the masked L1 of both depth maps average-pooled to each of ``coarse_scales`` (0: off): it
    supervises the person's overall relief and orientation, which per-pixel L1 under ambiguity flattens."""
    coarse_scales: tuple[int, ...] = (16, 64)
    """Sides of the pooled maps of the ``coarse`` term, pixels (each divides the crop's side)."""
    depth_min_extent: float = 0.0
    """Depth terms only count for crops where the person spans at least this fraction of the crop's side
    (0: every crop). Zoomed-out crops, which teach the silhouette head to frame a whole photo, show a
    person at 31-62 % of the side against 71-84 % for framed crops; their depth is not what a framed
    photo asks for."""
    back: float = 1.0
    """Masked L1 of the predicted back colour (RGB in [0, 1]) inside the true silhouette, on samples that
    hold back colours; only for models with ``back_colour``."""
    mask: float = 1.0
    """Binary cross-entropy of the silhouette logits."""
    normals: float = 0.1
    """1 - cosine between normals of predicted and true depth (both maps); sharpens local shape, which
    L1 alone blurs."""
    normal_stacks: StackChoice = "last"
    """Stacks the normal loss applies to: ``"last"`` (default: full-resolution normals cost ~0.1 s per map
    per batch of 8 on 2 cores, and the earlier stacks learn the coarse shape) or ``"all"``."""
    adversarial: float = 0.01
    """Weight of the generator's adversarial term; 0 disables it (no discriminator needed). With
    ``adversarial_share`` it is only the starting weight."""
    adversarial_share: float = 0.0
    """When > 0, the adversarial weight adapts at every step so that the adversarial term's gradient at the
    predicted depth maps is this fraction of the depth terms' (after VQGAN's adaptive weight, Esser et al.
    2021): a discriminator whose gradient is 0.04 % of the depth terms' (measured on the first shipped
    model) shapes nothing."""
    adversarial_kind: AdversarialKind = "lsgan"
    """``"lsgan"`` (least squares, Mao et al. 2017) or ``"hinge"``."""
    intermediate: float = 1.0
    """Weight of every stack but the last (Newell et al. supervise all stacks equally)."""
    depth_scale: float = DEFAULT_DEPTH_SCALE
    """Metres per relative unit; must equal the model's ``ModelConfig.depth_scale``
    (use :meth:`for_model`)."""
    normal_jump: float = 0.05
    """Metres: a ground-truth depth step larger than this between 4-neighbours is a discontinuity (an arm
    in front of the torso) where gradient normals mean nothing; those pixels are left out of the normal
    loss."""

    def __post_init__(self) -> None:
        for name in (
            "visible", "hidden", "mask", "normals", "adversarial", "intermediate", "coarse", "back",
            "adversarial_share",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a weight >= 0, got {value!r}")
        for name in ("depth_scale", "normal_jump"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name}: expected a positive number of metres, got {value!r}")
        if self.normal_stacks not in ("last", "all"):
            raise ValueError(f"normal_stacks: expected 'last' or 'all', got {self.normal_stacks!r}")
        if self.adversarial_kind not in ("lsgan", "hinge"):
            raise ValueError(f"adversarial_kind: expected 'lsgan' or 'hinge', got {self.adversarial_kind!r}")
        if self.hidden_term not in ("hidden", "thickness", "detached"):
            raise ValueError(f"hidden_term: expected hidden, thickness or detached, got {self.hidden_term!r}")
        if not self.coarse_scales or not all(isinstance(s, int) and s >= 1 for s in self.coarse_scales):
            raise ValueError(f"coarse_scales: expected pooled sides >= 1, got {self.coarse_scales!r}")
        if not 0 <= self.depth_min_extent < 1:
            raise ValueError(f"depth_min_extent: expected a fraction in [0, 1), got {self.depth_min_extent!r}")

    @classmethod
    def for_model(cls, config: ModelConfig, **weights) -> LossConfig:
        """A loss config whose ``depth_scale`` matches ``config``'s; ``weights`` override the defaults."""
        return cls(depth_scale=config.depth_scale, **weights)

    @classmethod
    def parse_overrides(cls, items: Sequence[str]) -> dict[str, object]:
        """``["name=value", ...]`` (``mould train --loss``) as typed field values.

        Numbers become floats (ints for ``coarse_scales``, a comma-separated list), names stay strings.

        Raises:
            ValueError: an unknown field, a malformed item or a value of the wrong type, naming it.
        """
        fields = {field.name for field in dataclasses.fields(cls)} - {"depth_scale"}
        values: dict[str, object] = {}
        for item in items:
            name, equals, text = item.partition("=")
            name = name.strip().replace("-", "_")
            if not equals or name not in fields:
                raise ValueError(
                    f"--loss {item}: expected NAME=VALUE with NAME one of {', '.join(sorted(fields))}"
                )
            try:
                if name == "coarse_scales":
                    values[name] = tuple(int(part) for part in text.split(",") if part.strip())
                elif name in ("normal_stacks", "adversarial_kind", "hidden_term"):
                    values[name] = text.strip()
                else:
                    values[name] = float(text)
            except ValueError:
                raise ValueError(f"--loss {item}: {text!r} is not a valid {name}") from None
        return values
