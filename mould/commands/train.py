"""``mould train --config small --data DIR[:WEIGHT][,DIR...] --out RUN_DIR``: train the network.

The options map onto :class:`mould.training.config.TrainConfig`; the loop is :func:`mould.training.loop.train`.
Under ``torchrun --nproc-per-node K`` the same command trains with K processes (DistributedDataParallel).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mould.devices import DEVICES
    from mould.recon.mesh import MESHERS
    from mould.training.config import PRECISIONS, STREAM_RENDERS, TRAINABLE, TrainConfig

    p = subparsers.add_parser(
        "train",
        help="train the network on folders of samples (resumable, TensorBoard, torchrun)",
        description="Train the mould network. Writes RUN_DIR/checkpoints/step_XXXXXX.safetensors (weights) "
        "with _state.pt (optimisers, RNG states, data position), metrics.csv, tensorboard/, images/, run.json "
        "and train.log. Ctrl-C or SIGTERM stop after the current step with a checkpoint; --resume continues "
        "exactly where the run stopped. Under `torchrun --nproc-per-node K -m mould.cli train ...` it "
        "trains on K processes (GPUs, or CPU with gloo).",
    )
    p.add_argument("--config", required=True, metavar="NAME", help="model size: tiny, small, medium or paper")
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR[:WEIGHT][,DIR...]",
        help="training folders of samples (mould synth), each with a sampling weight (default 1); `synth` or "
        "`synth@RES` streams fresh generated samples (rendered on the GPU when training on one)",
    )
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="the run folder")
    p.add_argument(
        "--steps", type=int, help="total steps (default: tiny 200, small and medium 3000, paper 200000)"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="end the run after this much wall time (all sessions, validation and checkpoints included) if it "
        "has not reached --steps, with a validation pass and a checkpoint; the learning-rate decay and the "
        "adversarial start then follow the time spent, so the run ends decayed (e.g. a GPU lease)",
    )
    p.add_argument(
        "--batch-size", type=int, help="samples per step and process (default: tiny 4, small, medium 8, paper 16)"
    )
    p.add_argument("--lr", type=float, help="peak learning rate of Adam (default 2e-4; paper 2.5e-4)")
    p.add_argument("--warmup-steps", type=int, help="linear learning-rate warm-up steps before the cosine decay")
    p.add_argument(
        "--adversarial-start",
        type=float,
        help="when the adversarial loss switches on: a fraction of --steps (or of --time-limit, whichever is "
        "reached first) if < 1, else a step (default 0.3)",
    )
    p.add_argument(
        "--adversarial-weight", type=float, help="weight of the adversarial loss (default: the model's; 0: none)"
    )
    p.add_argument(
        "--loss",
        action="append",
        metavar="NAME=VALUE",
        help="a loss option, repeatable: a field of mould.models.configs.LossConfig, e.g. hidden_term=thickness, "
        "coarse=0.5, coarse_scales=16,64, depth_min_extent=0.6, adversarial_share=0.2",
    )
    p.add_argument(
        "--device", choices=DEVICES, default=TrainConfig.device, help="where training runs (default %(default)s)"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=TrainConfig.precision,
        help="auto: bf16 (or fp16) autocast on GPU, fp32 on CPU (default %(default)s)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    p.add_argument(
        "--init",
        type=Path,
        metavar="CHECKPOINT",
        help="start from these weights instead of random ones: fine-tune, e.g. the shipped model; weights of a "
        "narrower config (small for --config medium) are widened, computing the same function to start with",
    )
    p.add_argument(
        "--trainable",
        choices=TRAINABLE,
        help="all: every weight (default); back: only the back-colour branch of a network from --init, whose "
        "depth and silhouette stay bit-identical",
    )
    p.add_argument("--val", type=Path, metavar="DIR", help="held-out folder of samples for validation passes")
    p.add_argument("--val-every", type=int, help="steps between validation passes (default 500)")
    p.add_argument("--val-samples", type=int, help="samples scored per validation pass (default 64)")
    p.add_argument("--val-meshes", type=int, help="validation samples meshed for P2S (default 4)")
    p.add_argument(
        "--val-mesher",
        choices=MESHERS,
        help=f"mesher of the validation P2S (default {TrainConfig.val_mesher}: fast)",
    )
    p.add_argument("--ckpt-every", type=int, help="steps between checkpoints (default 500)")
    p.add_argument(
        "--keep-checkpoints",
        type=int,
        metavar="N",
        help="newest checkpoints kept, older ones deleted (default 3; keep more to average or compare them later)",
    )
    p.add_argument("--log-every", type=int, help="steps between loss records (default 10)")
    p.add_argument("--seed", type=int, help="seed of weights, data order and augmentation (default 0)")
    p.add_argument(
        "--workers", type=int, help="data-loading processes per training process (default: spare cores, 1 to 8)"
    )
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: cores / processes - 1)")
    p.add_argument(
        "--stream-render",
        choices=STREAM_RENDERS,
        help="where a synth stream's samples are rendered: device (default: on the training GPU) or workers "
        "(whole samples made by the CPU data workers: slower, a fallback)",
    )
    p.add_argument(
        "--backgrounds",
        type=Path,
        metavar="DIR",
        help="folder of person-free photos whose crops are the backgrounds of a synth stream (procedural "
        "backgrounds otherwise), e.g. tools/background_photos.py's",
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None, help="no augmentation")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mould.training.config import make_train_config

    config = make_train_config(
        args.config,
        data=tuple(_parse_data(args.data)),
        out=args.out,
        steps=args.steps,
        time_limit=args.time_limit,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        adversarial_start=args.adversarial_start,
        adversarial_weight=args.adversarial_weight,
        loss=tuple(args.loss) if args.loss else None,
        device=args.device,
        precision=args.precision,
        resume=args.resume,
        init=args.init,
        trainable=args.trainable,
        val=args.val,
        val_every=args.val_every,
        val_samples=args.val_samples,
        val_meshes=args.val_meshes,
        val_mesher=args.val_mesher,
        ckpt_every=args.ckpt_every,
        keep_checkpoints=args.keep_checkpoints,
        log_every=args.log_every,
        seed=args.seed,
        workers=args.workers,
        threads=args.threads,
        augment=args.augment,
        stream_render=args.stream_render,
        backgrounds=args.backgrounds,
    )
    from mould.training.loop import train

    result = train(config)
    if result.rank != 0:  # under torchrun, rank 0 alone reports
        return 130 if result.interrupted else 0
    figures = ", ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in result.validation.items())
    state = "interrupted at" if result.interrupted else "finished at"
    if not result.interrupted and result.step < config.steps:
        state = "time limit: finished at"
    print(
        f"{state} step {result.step}: {result.checkpoint} ({result.steps_per_s:.2f} steps/s this session, "
        f"{result.elapsed_s / 60:.1f} min in all){'; ' + figures if figures else ''}"
    )
    if result.interrupted:
        import shlex

        from mould.training.run_info import command_line

        again = command_line() + ([] if config.resume else ["--resume"])
        print(f"resume with: {shlex.join(again)}")
        return 130
    return 0


def _parse_data(text: str):
    from mould.datasets.mixing import parse_data_spec

    return parse_data_spec(text)
