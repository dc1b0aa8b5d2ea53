#!/usr/bin/env python
"""A fastnn recipe in PyTorch CPU, written for speed: the distortions drawn per batch, on tensors.

    python benchmarks/torch_record.py --preset record [--data mnist|fashion-mnist] [--seed 0]
        [--threads 2] [--epochs N] [--json PATH] [any fastnn train option, e.g. --lr 0.1]
    python benchmarks/torch_record.py --preset max --epochs 1 --time-augment

The recipe is fastnn's own: ``fastnn.config.PRESETS[--preset]`` over
``TrainConfig``'s defaults, then any option given here (the same names as
``fastnn train``'s), so there is one source of truth.  The data are fastnn's:
``fastnn.load_dataset`` with the recipe's dev size and the seed, as ``fastnn
train`` loads them, so the training, dev and test rows are identical.  The network
starts from fastnn's initial weights (``fastnn.init_network``, as an
``nn.Sequential`` of ``nn.Linear``, ``_torch_mlp.py``); each epoch visits the rows
in fastnn's own shuffle (``permutation(n, seed, epoch)``), and every step takes its
rate from ``fastnn.schedules.learning_rates``, with weight decay on the weights only.

The augmentation is fastnn's definition (:mod:`fastnn.augment`), computed for the
whole batch at once: one ``torch.rand`` of the batch's uniform draws, the affine
maps as a ``(B, 2, 3)`` theta as ``F.affine_grid`` takes it, the elastic field as
``alpha sigma A U A^T`` by two batched matmuls over ``U`` of shape ``(B, 2, K, K)``,
the sampling grid as ``theta`` times the pixels' ``(x, y, 1)`` plus that field (one
``baddbmm``: ``F.affine_grid``'s numbers, 3x faster than it and a separate sum), and
one bilinear ``F.grid_sample`` with zeros outside.  With ``align_corners=False`` the
normalised coordinate of pixel ``i`` is ``(i - 13.5) / 14``, so fastnn's centre ``c =
13.5`` is 0 and ``t`` pixels are ``t / 14`` (:data:`HALF`).  The random numbers are torch's, not fastnn's counter-based keys: the
same distribution, other draws.  With ``augment_flip`` a flipped image negates the
x column of its theta; with ``augment_erase`` an erased one gets a zeroed rectangle
drawn as fastnn draws it (area fraction in [0.02, ``augment_erase_area``], aspect
ratio log-uniform in [0.3, 3.3], fastnn's rounding of its sides).

Timed per epoch: the shuffle, the gathers, the distortions and the training steps
(as fastnn's epoch seconds).  After every epoch, untimed, the dev and test accuracy
(``torch.inference_mode``).  Prints one JSON line per epoch (epoch, cumulative
training seconds, dev and test accuracy, train loss); ``--json`` writes the run.
``--time-augment`` first times the distortions alone over one epoch of batches;
``--augment-threads 1`` runs them on one thread (the steps keep ``--threads``).

Needs ``torch`` (not a dependency of fastnn).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from fastnn.augment import CENTRE, ERASE_MIN_AREA, ERASE_RATIOS, SIDE, AugmentSpec, elastic_grid, spec_from_config
from fastnn.config import DEV_SIZE, PRESETS, TrainConfig
from fastnn.data import parse_dev_size
from fastnn.errors import FastnnError

#: Half the image side: pixel ``i``'s normalised coordinate is ``(i - 13.5) / HALF``
#: (``align_corners=False``), so fastnn's pixel units become grid units by dividing by it.
HALF = SIDE / 2
#: Options of fastnn train that mean nothing here.
IGNORED = ("backend", "log_every")


def recipe(preset: str, given: dict | None = None) -> tuple[TrainConfig, int | float | str]:
    """``(config, dev size)`` as ``fastnn train --preset PRESET`` with the options ``given``
    resolves them: the defaults, then the preset, then ``given`` (``None`` values skipped)."""
    if preset not in PRESETS:
        raise FastnnError(f"this fastnn has no preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    values = {f.name: f.default for f in fields(TrainConfig)}
    values["dev_size"] = DEV_SIZE
    values.update(PRESETS[preset])
    values.update({k: v for k, v in (given or {}).items() if v is not None})
    dev_size = parse_dev_size(values.pop("dev_size"))
    return TrainConfig(**values).validate(), dev_size


class BatchDistortion:
    """fastnn's distortion of ``spec`` (plus flips and erasing), drawn for a whole batch on tensors.

    ``distorter(x)`` takes images ``(B, 784)`` or ``(B, 1, 28, 28)`` (float32) and returns
    fresh distortions ``(B, 1, 28, 28)``; :meth:`warp` does it for given draws.
    """

    def __init__(self, spec: AugmentSpec, *, generator=None):
        import torch

        self.spec, self.flip, self.erase = spec, spec.flip, spec.erase
        self.generator = generator
        if spec.elastic:
            A, _, _ = elastic_grid(spec.sigma)
            self.A = torch.from_numpy(A.astype(np.float32))  # (28, K)
            self.At = self.A.T.contiguous()
            self.K = A.shape[1]
        else:
            self.K = 0
        self.n_draws = 6 + 2 * self.K * self.K
        self.rows = torch.arange(SIDE, dtype=torch.float32)
        at = (self.rows - CENTRE) / HALF  # pixel centres in grid units (align_corners=False)
        # (3, 784): every output pixel's (x, y, 1), row-major (x the column, y the row)
        self.base = torch.stack((at.repeat(SIDE), at.repeat_interleave(SIDE), torch.ones(SIDE * SIDE)))

    def draws(self, B: int):
        """The batch's uniform draws: ``(B, 6 + 2 K K)`` in [-1, 1) (the affine ones, then ``Ux``
        and ``Uy`` row by row, as fastnn orders them), and ``(B, 6)`` in [0, 1) for the flips and
        erasing (``None`` without them)."""
        import torch

        u = torch.empty(B, self.n_draws).uniform_(-1.0, 1.0, generator=self.generator)
        v = torch.rand(B, 6, generator=self.generator) if self.flip or self.erase else None
        return u, v

    def theta(self, u, flip=None):
        """``(B, 2, 3)`` affine thetas for ``F.affine_grid`` from draws ``u[:, :6]`` in [-1, 1)
        (fastnn's rotation, shear, zoom x, zoom y, shift x, shift y); ``flip`` (bool ``(B,)``)
        mirrors the images it marks left to right."""
        import torch

        s = self.spec
        ang = torch.deg2rad(s.rotation * u[:, 0])
        k = s.shear * u[:, 1]
        izx = 1.0 / (1.0 + s.scale * u[:, 2])
        izy = 1.0 / (1.0 + s.scale * u[:, 3])
        c, sn = torch.cos(ang), torch.sin(ang)
        # src - centre = Rot Shear diag(1/zx, 1/zy) (p - centre) - t, in units of HALF pixels
        theta = torch.stack(
            (
                torch.stack((c * izx, (c * k - sn) * izy, -s.shift * u[:, 4] / HALF), 1),
                torch.stack((sn * izx, (sn * k + c) * izy, -s.shift * u[:, 5] / HALF), 1),
            ),
            1,
        )
        if flip is not None:
            theta[:, :, 0] *= torch.where(flip, -1.0, 1.0)[:, None]
        return theta

    def warp(self, x, theta, U=None):
        """Images ``x (B, 1, 28, 28)`` sampled at ``theta``'s map plus the elastic field of grid
        noise ``U (B, 2, K, K)`` in [-1, 1), if given: ``alpha sigma A U A^T`` pixels.

        The grid is ``F.affine_grid``'s (``theta`` times every pixel's ``(x, y, 1)``, the same
        numbers to float32 rounding), computed in planes ``(B, 2, 784)`` so that the field adds
        in the same ``baddbmm``: 3x faster than ``affine_grid`` plus a separate sum.
        """
        import torch
        import torch.nn.functional as F

        B = x.shape[0]
        if U is None:
            planes = torch.matmul(theta, self.base)
        else:
            D = torch.matmul(torch.matmul(self.A, U), self.At)  # (B, 2, 28, 28): Dx[row, column], Dy
            D.mul_(self.spec.alpha * self.spec.sigma / HALF)
            planes = torch.baddbmm(D.view(B, 2, SIDE * SIDE), theta, self.base.expand(B, 3, SIDE * SIDE))
        grid = planes.view(B, 2, SIDE, SIDE).permute(0, 2, 3, 1)  # (B, 28, 28, 2): (x, y) per pixel
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def erase_mask(self, v):
        """Bool ``(B, 1, 28, 28)``: each image's rectangle to zero, from draws ``v[:, :5]`` in [0, 1)
        (area, aspect, top, left, whether at all)."""
        import torch

        lo, hi = ERASE_MIN_AREA, self.spec.erase_area
        area = SIDE * SIDE * (lo + (hi - lo) * v[:, 0])
        aspect = torch.exp(math.log(ERASE_RATIOS[0]) + math.log(ERASE_RATIOS[1] / ERASE_RATIOS[0]) * v[:, 1])
        h = torch.floor(torch.sqrt(area * aspect) + 0.5).clamp_(1, SIDE)  # fastnn.augment.erase_boxes' sides
        w = torch.floor(area / h + 0.5).clamp_(1, SIDE)
        top = torch.floor(v[:, 2] * (SIDE - h + 1))
        left = torch.floor(v[:, 3] * (SIDE - w + 1))
        r = self.rows
        in_rows = (r >= top[:, None]) & (r < (top + h)[:, None])
        in_cols = (r >= left[:, None]) & (r < (left + w)[:, None])
        chosen = (v[:, 4] < self.erase)[:, None, None]
        return (in_rows[:, :, None] & in_cols[:, None, :] & chosen)[:, None]

    def __call__(self, x):
        B = x.shape[0]
        x = x.view(B, 1, SIDE, SIDE)
        u, v = self.draws(B)
        flip = v[:, 5] < self.flip if self.flip else None
        U = u[:, 6:].view(B, 2, self.K, self.K) if self.K else None
        out = self.warp(x, self.theta(u, flip), U)
        if self.erase:
            out.masked_fill_(self.erase_mask(v), 0.0)
        return out


def sgd_optimizer(model, config):
    """``torch.optim`` for the config's optimizer, weight decay on the weights only; SGD's fused
    CPU kernel (about 10% off a 784-1000-500-10 step against its for-loop and foreach forms)."""
    import torch
    from torch import nn

    from _torch_mlp import optimizer

    if config.optimizer == "adam":
        return optimizer(model, "adam", config.lr, config.momentum, config.beta2, config.weight_decay)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    groups = [
        {"params": [m.weight for m in linears], "weight_decay": config.weight_decay},
        {"params": [m.bias for m in linears], "weight_decay": 0.0},
    ]
    rule = dict(
        lr=config.lr,
        momentum=0.0 if config.optimizer == "sgd" else config.momentum,
        nesterov=config.optimizer == "nesterov",
    )
    try:
        return torch.optim.SGD(groups, **rule, fused=True)
    except (RuntimeError, TypeError):  # an older torch without the fused CPU kernel
        return torch.optim.SGD(groups, **rule, foreach=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default", help="fastnn's named recipe (fastnn.config.PRESETS)")
    p.add_argument("--data", default="mnist", help="mnist or fashion-mnist (as fastnn train --data)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument(
        "--augment-threads",
        type=int,
        default=0,
        help="threads for the distortions alone (default 0: --threads); the rest keeps --threads",
    )
    p.add_argument("--limit", type=int, default=0, help="train on the first N training rows only (0: all)")
    p.add_argument("--json", type=Path, default=None, help="write the run (config, epochs, accuracy) here")
    p.add_argument(
        "--time-augment", action="store_true", help="first time the distortions alone over one epoch of batches"
    )
    p.add_argument("--dev-size", default=None, help="rows held out for the dev set (default: the preset's)")
    for f in fields(TrainConfig):  # fastnn train's options, overriding the preset
        if f.name not in IGNORED:
            name = "--" + f.name.replace("_", "-")
            p.add_argument(name, dest=f.name, type=f.metadata["type"], default=None, help=f.metadata["help"])
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in IGNORED}
    given["dev_size"] = args.dev_size
    try:
        config, dev_size = recipe(args.preset, given)
    except FastnnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.patience:
        print("error: early stopping (patience) is not part of this comparison", file=sys.stderr)
        return 2

    import torch
    import torch.nn.functional as F

    import fastnn
    from fastnn.backends import get_backend
    from fastnn.schedules import learning_rates

    from _torch_mlp import describe, sequential

    torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    data = fastnn.load_dataset(args.data, dev_size=dev_size, seed=config.seed)
    X, y = data.X_train, data.y_train
    if args.limit:
        X, y = X[: args.limit], y[: args.limit]
    n, bs = len(y), config.batch_size
    spec = spec_from_config(config)
    augment = spec.kind != "none"  # flips and erasing are options of affine and elastic
    if augment:
        fastnn.augment.check_images(X.shape[1])
    distort = BatchDistortion(spec, generator=generator) if augment else None

    Xt, yt = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(np.ascontiguousarray(y))
    splits = {
        name: (torch.from_numpy(Xs), torch.from_numpy(ys))
        for name, Xs, ys in (("dev", data.X_dev, data.y_dev), ("test", data.X_test, data.y_test))
        if ys is not None and len(ys)
    }
    net = fastnn.init_network(
        X.shape[1], config.hidden, len(data.class_names), config.seed, activation=config.activation
    )
    model = sequential(net)
    opt = sgd_optimizer(model, config)
    steps = math.ceil(n / bs)
    lrs = learning_rates(config.schedule, config.lr, steps * config.epochs).tolist()
    shuffle = get_backend("numpy").permutation
    perm_np = np.empty(n, np.int64)
    perm = torch.from_numpy(perm_np)
    xbuf = torch.empty(bs, Xt.shape[1])
    ybuf = torch.empty(bs, dtype=torch.int64)

    aug_threads = args.augment_threads or args.threads
    if distort is not None and aug_threads != args.threads:
        batch_distortion = distort

        def distort(x):
            torch.set_num_threads(aug_threads)
            try:
                return batch_distortion(x)
            finally:
                torch.set_num_threads(args.threads)

    if args.time_augment and distort is not None:
        t0 = time.perf_counter()
        for lo in range(0, n, bs):
            distort(Xt[lo : lo + bs])
        print(json.dumps({"augment_seconds_per_epoch": round(time.perf_counter() - t0, 3), "rows": n}), flush=True)

    def accuracy(Xs, ys) -> float:
        model.eval()
        with torch.inference_mode():
            right = sum(
                int(model(Xs[i : i + 4096]).argmax(1).eq(ys[i : i + 4096]).sum()) for i in range(0, len(ys), 4096)
            )
        model.train()
        return right / len(ys)

    rows, trained, step = [], 0.0, 0
    model.train()
    for epoch in range(config.epochs):
        t0 = time.perf_counter()
        shuffle(n, config.seed, epoch, perm_np)
        loss_sum = torch.zeros((), dtype=torch.float64)
        for lo in range(0, n, bs):
            m = min(bs, n - lo)
            idx = perm[lo : lo + m]
            xb = torch.index_select(Xt, 0, idx, out=xbuf[:m])
            yb = torch.index_select(yt, 0, idx, out=ybuf[:m])
            if distort is not None:
                xb = distort(xb).view(m, -1)
            lr = lrs[step]
            for group in opt.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * m
            step += 1
        seconds = time.perf_counter() - t0
        trained += seconds
        row = {"epoch": epoch + 1, "train_seconds": trained, "seconds": seconds, "train_loss": float(loss_sum) / n}
        for name, (Xs, ys) in splits.items():
            row[f"{name}_accuracy"] = accuracy(Xs, ys)
        rows.append(row)
        print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    result = {
        "implementation": "torch",
        "preset": args.preset,
        "data": args.data,
        "config": asdict(config),
        "dev_size": len(data.y_dev),
        "n_train": n,
        "augment": asdict(spec),
        "epochs": rows,
        "train_seconds": trained,
        "test_accuracy": rows[-1].get("test_accuracy") if rows else None,
        "dev_accuracy": rows[-1].get("dev_accuracy") if rows else None,
        "notes": f"torch {torch.__version__}, {torch.get_num_threads()} threads, {describe(model)}, "
        f"distortions per batch (grid_sample, {aug_threads} threads)",
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
