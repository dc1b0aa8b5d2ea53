"""The same augmented recipe in PyTorch + torchvision, for issue 13's comparison (not a test).

Trains the network of ``--hidden`` layers (comma-separated, as ``fastnn train
--hidden``; ReLU, softmax cross-entropy) as the ``nn.Sequential`` of ``_torch_mlp.py``
from fastnn's own initial weights, with Nesterov SGD (momentum 0.9), weight decay on
the weights only, fastnn's one-cycle schedule per step and batch 128, the training images distorted per sample by torchvision's
``RandomAffine`` (and ``ElasticTransform`` for ``--augment elastic``) in a
``DataLoader``.  The ranges are fastnn's defaults translated to torchvision's
parameters: rotation +-10 degrees, zoom 0.9-1.1 (torchvision's is isotropic,
fastnn's per axis), shear +-atan(0.2) = 11.3 degrees along x, shift +-1.5 px
(translate 1.5/28); torchvision's elastic alpha/sigma are its own (its
displacement field is normalised differently; see its docs).  Test accuracy is
measured after every epoch (outside the timed training), so the output gives the
time to any accuracy reached.

    python benchmarks/augment_torch_compare.py --augment affine --epochs 15 --hidden 800
    python benchmarks/augment_torch_compare.py --augment affine --epochs 15 --hidden 1000,500

Needs ``torch`` and ``torchvision`` (not dependencies of fastnn) and fastnn's MNIST.
"""

from __future__ import annotations

import argparse
import json
import math
import time

from fastnn.config import layer_sizes
from fastnn.schedules import learning_rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--augment", choices=["none", "affine", "elastic"], default="affine")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--hidden", type=layer_sizes, default=(800,), help="hidden layer sizes, e.g. 1000,500")
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--alpha", type=float, default=34.0)
    ap.add_argument("--sigma", type=float, default=4.0)
    ap.add_argument("--dev-size", type=int, default=1000)
    args = ap.parse_args()

    import torch
    from torch import nn

    # PyPI's Linux torchvision wheels are CUDA builds: beside a CPU-only torch their C++ ops
    # (detection ops, never called here) cannot load, and importing torchvision then fails
    # registering fake kernels for them.  Skipping those registrations lets the import go
    # through; the transforms used here are pure PyTorch (affine_grid / grid_sample).
    real_register_fake = torch.library.register_fake

    def lenient_register_fake(op, func=None, /, **kwargs):
        def register(f):
            try:
                return real_register_fake(op, **kwargs)(f)
            except RuntimeError:
                return f

        return register(func) if func is not None else register

    torch.library.register_fake = lenient_register_fake
    try:
        from torchvision.transforms import v2
    finally:
        torch.library.register_fake = real_register_fake

    import fastnn

    from _torch_mlp import optimizer, sequential

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    data = fastnn.load_dataset("mnist", dev_size=args.dev_size)
    X = torch.from_numpy(data.X_train).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(data.y_train)
    X_test = torch.from_numpy(data.X_test)
    y_test = torch.from_numpy(data.y_test)

    steps = [
        v2.RandomAffine(
            degrees=10,
            translate=(1.5 / 28, 1.5 / 28),
            scale=(0.9, 1.1),
            shear=(-math.degrees(math.atan(0.2)), math.degrees(math.atan(0.2))),
            interpolation=v2.InterpolationMode.BILINEAR,
        )
    ]
    if args.augment == "elastic":
        steps.append(v2.ElasticTransform(alpha=args.alpha, sigma=args.sigma))
    transform = v2.Compose(steps) if args.augment != "none" else None

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            img = X[i]
            return (transform(img) if transform else img).reshape(784), y[i]

    loader = torch.utils.data.DataLoader(
        Images(),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        drop_last=False,
    )
    model = sequential(fastnn.init_network(784, args.hidden, 10, args.seed))
    opt = optimizer(model, "nesterov", args.lr, momentum=0.9, weight_decay=args.weight_decay)
    lrs = learning_rates("onecycle", args.lr, len(loader) * args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    trained = 0.0
    step = 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in loader:
            for g in opt.param_groups:
                g["lr"] = float(lrs[step])
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            step += 1
        trained += time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            acc = float((model(X_test).argmax(1) == y_test).float().mean())
        print(json.dumps({"epoch": epoch + 1, "train_seconds": round(trained, 2), "test_accuracy": acc}), flush=True)


if __name__ == "__main__":
    main()
