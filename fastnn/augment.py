"""On-the-fly data augmentation: the exact definition both backends implement.

Every training sample gets a fresh random distortion every epoch.  The
distorted image is the original 28x28 image (row-major, values in [0, 1])
sampled with **bilinear interpolation, zero outside the image**, at

    src(p) = c + Rot(theta) . Shear(k) . diag(1/zx, 1/zy) . (F(p) - c) - t  +  D(p)

for every output pixel ``p = (x, y)`` = (column, row), with ``c = (13.5, 13.5)``
the image centre, and then, with probability ``erase``, a random rectangle of it
is set to 0 (random erasing, below).  The affine part (``kind`` ``"affine"`` and
``"elastic"``):

* ``theta = rotation * (2 u0 - 1)`` degrees (``Rot(theta)`` maps ``(x, y)`` to
  ``(x cos - y sin, x sin + y cos)``);
* ``k = shear * (2 u1 - 1)`` (``Shear(k)`` maps ``(x, y)`` to ``(x + k y, y)``);
* ``zx = 1 + scale * (2 u2 - 1)``, ``zy = 1 + scale * (2 u3 - 1)`` (zoom factors:
  above 1 the digit gets larger);
* ``t = (shift * (2 u4 - 1), shift * (2 u5 - 1))`` pixels;
* ``F`` mirrors the image left-right, ``F(x, y) = (SIDE - 1 - x, y)``, when the
  sample's flip draw ``u_f < flip``, and is the identity otherwise (always with
  ``flip = 0``): the output's columns are mirrored before the affine map, which
  only negates the first column of its matrix (exact in float64), while the
  elastic field ``D(p)`` is not mirrored.

The elastic field ``D = (Dx, Dy)`` (``kind="elastic"`` only; zero for
``"affine"``) is Simard et al.'s (2003) uniform noise smoothed by a Gaussian of
width ``sigma`` and scaled by ``alpha``, with the noise placed on a coarse grid
instead of on every pixel, which makes it ~10x cheaper to compute:

    Dx[r, q] = alpha * sigma * sum_{i, j} A[r, i] * Ux[i, j] * A[q, j]     (Dy likewise with Uy)

where ``Ux[i, j] = 2 u - 1`` are ``K x K`` uniform draws on the grid points
``g_i = 13.5 + (i - (K - 1) / 2) * sigma`` (spacing ``sigma``, reaching at least
``3 sigma`` beyond the image on every side), and ``A[r, i] = N(r - g_i; 0,
sigma)`` is the Gaussian density, set to zero where ``|r - g_i| > 3 sigma``
(:func:`elastic_grid`).  The factor ``sigma`` (the grid spacing) gives the
field the same variance as Simard's per-pixel noise smoothed by a normalised
Gaussian (a Gaussian sampled at a spacing of one standard deviation sums to
its integral within 1e-8), so ``alpha`` and ``sigma`` mean what they mean
there: alpha=34, sigma=4 displaces pixels by ~1.4 px (rms).

Random erasing (Zhong et al. 2017), after all of the above, with probability
``erase`` (the sample's draw ``u_e < erase``): an ``h x w`` rectangle of the
distorted image is set to 0, the background.  From the sample's next four draws
``v1 .. v4``, in float64 (``floor``, ``sqrt``, ``exp``, ``log`` as NumPy computes them,
once, for both backends: :func:`erase_boxes`):

* area ``S = SIDE**2 * (ERASE_MIN_AREA + (erase_area - ERASE_MIN_AREA) v1)`` pixels
  (a fraction of the image between ``ERASE_MIN_AREA = 0.02`` and ``erase_area``);
* aspect ratio ``r = h / w = exp(log 0.3 + (log 3.3 - log 0.3) v2)``, log-uniform in
  ``ERASE_RATIOS = (0.3, 3.3)``;
* ``h = clip(floor(sqrt(S r) + 1/2), 1, SIDE)`` rows, then ``w = clip(floor(S / h + 1/2),
  1, SIDE)`` columns (so ``|h w - S| <= h / 2`` unless a side was clipped);
* top row ``y0 = floor(v3 (SIDE - h + 1))`` and left column ``x0 = floor(v4 (SIDE - w +
  1))``: uniform over the places where the rectangle fits in the image.

Randomness is counter-based, like the epoch shuffle (:mod:`fastnn._keys`):
sample ``i`` of epoch ``e`` uses the key ``k_i = mix(epoch_key(seed, e) +
i * GOLDEN)`` and its ``j``-th draw is ``u_j = (mix(k_i + (j + 1) *
GOLDEN) >> 11) * 2**-53`` (uniform in [0, 1), exact in float64).  Draws 0-5 are
the affine ones above, draws ``6 .. 6 + K*K - 1`` are ``Ux`` row by row, the
next ``K*K`` are ``Uy`` (``K = 0`` for ``"affine"``); after them, at ``f = 6 + 2 K*K``
(:meth:`AugmentSpec.flip_draw`), come the flip draw ``u_f`` and the erasing draws
``u_e, v1, v2, v3, v4`` (``u_{f+1} .. u_{f+5}``).  These places are fixed whether
flips and erasing are on or not, and with ``flip = erase = 0`` the definition is
the one before they existed, bit for bit.  A sample's distortion thus depends only on (seed,
epoch, its row index in the training set): not on the shuffle, the batch, the
backend or the number of threads.

The NumPy backend computes all this in float64 (``scipy.ndimage.map_coordinates``
for the interpolation).  The numba backend computes the draws, the affine map and
the interpolation in float64 too, but the elastic field's two small products in
float32 (twice as fast): its coordinates then differ from the reference's by
float32 rounding of the field, ~1e-7 of its size.  Bilinear interpolation is
continuous in the coordinates, with slope at most 1 per pixel along each axis for
images in [0, 1], so the pixels agree to within :func:`agreement_atol`.  Flips and
erasing add no difference: both backends compare the same float64 draw with
``flip``, negate the same float64 numbers, and zero the same rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _keys
from ._keys import epoch_key  # part of the definition above
from .errors import FastnnError
from .pixels import SIDE  # images are SIDE x SIDE, row-major

#: The augmentation kinds, in order of strength.
AUGMENTS = ("none", "affine", "elastic")

CENTRE = (SIDE - 1) / 2
N_AFFINE_DRAWS = 6
#: Draws after the affine and elastic ones: the flip's, then the erasing's five.
N_FLIP_DRAWS, N_ERASE_DRAWS = 1, 5

#: Random erasing's smallest area, a fraction of the image (the largest is ``erase_area``).
ERASE_MIN_AREA = 0.02
#: Random erasing's aspect ratios ``h / w``, drawn log-uniformly between these.
ERASE_RATIOS = (0.3, 3.3)

#: Largest pixel difference between the two backends without an elastic field (pixels in
#: [0, 1]): the same float64 arithmetic up to order.  Measured on 10,000 MNIST images: 0.
AGREEMENT_ATOL = 1e-6


def agreement_atol(spec: AugmentSpec) -> float:
    """The largest pixel difference between the backends that the agreement tests accept.

    With an elastic field, 2e-6 * alpha / sigma: the field's size is below ~0.7 alpha /
    sigma, its float32 rounding ~1e-6 of that, and a pixel moves by at most twice the
    coordinate error.  Measured on 10,000 MNIST images: 9e-7 at alpha 34, sigma 4 (bound
    1.7e-5); 2.6e-6 at 60, 2 (6e-5); 1.2e-5 at 200, 1 (4e-4).
    """
    if spec.kind != "elastic":
        return AGREEMENT_ATOL
    return max(AGREEMENT_ATOL, 2e-6 * spec.alpha / spec.sigma)


@dataclass(frozen=True)
class AugmentSpec:
    """What to draw per sample: the kind and the ranges of every random parameter."""

    kind: str = "none"
    rotation: float = 0.0  # degrees, drawn uniformly from [-rotation, rotation]
    scale: float = 0.0  # zoom factors drawn from [1 - scale, 1 + scale], x and y independently
    shear: float = 0.0  # shear factor drawn from [-shear, shear]
    shift: float = 0.0  # pixels, x and y drawn from [-shift, shift]
    alpha: float = 0.0  # elastic: displacement scale
    sigma: float = 4.0  # elastic: smoothing width in pixels (and grid spacing)
    flip: float = 0.0  # probability of mirroring the image left-right
    erase: float = 0.0  # probability of erasing a random rectangle (set to 0)
    erase_area: float = 0.25  # erasing: the rectangle's largest area, a fraction of the image

    @property
    def elastic(self) -> bool:
        return self.kind == "elastic"

    def flip_draw(self) -> int:
        """Index of the flip draw ``u_f``; the erasing's five follow it."""
        K = elastic_grid(self.sigma)[0].shape[1] if self.elastic else 0
        return N_AFFINE_DRAWS + 2 * K * K

    def n_draws(self) -> int:
        """Uniform draws per sample that the spec uses (the flip's and the erasing's only when on)."""
        if self.erase > 0:
            return self.flip_draw() + N_FLIP_DRAWS + N_ERASE_DRAWS
        return self.flip_draw() + (N_FLIP_DRAWS if self.flip > 0 else 0)


def spec_from_config(config) -> AugmentSpec:
    """The :class:`AugmentSpec` a (validated) :class:`~fastnn.config.TrainConfig` asks for."""
    return AugmentSpec(
        config.augment,
        float(config.augment_rotation),
        float(config.augment_scale),
        float(config.augment_shear),
        float(config.augment_shift),
        float(config.augment_alpha),
        float(config.augment_sigma),
        float(config.augment_flip),
        float(config.augment_erase),
        float(config.augment_erase_area),
    )


def check_images(d: int) -> None:
    """Augmentation distorts 28x28 images: refuse anything else with a clear message."""
    if d != SIDE * SIDE:
        raise FastnnError(
            f"augmentation distorts {SIDE}x{SIDE} images (784 features, row-major); "
            f"the data have {d} features: use augment='none'"
        )


def sample_keys(seed: int, epoch: int, n: int) -> np.ndarray:
    """``k_i`` for samples ``0..n-1`` (uint64; arithmetic mod 2**64)."""
    return _keys.sample_key(np.uint64(epoch_key(seed, epoch)), np.arange(n, dtype=np.uint64))


def draws(keys: np.ndarray, n_draws: int) -> np.ndarray:
    """Uniform [0, 1) draws ``u[i, j]`` (float64), ``j < n_draws``, for the sample keys ``keys``."""
    return _keys.uniform(keys[:, None], np.arange(n_draws, dtype=np.uint64)[None, :])


def erase_boxes(u: np.ndarray, spec: AugmentSpec) -> np.ndarray:
    """The erased rectangles ``[y0, x0, h, w]`` (int64, ``(n, 4)``) for the erasing draws
    ``u (n, 5)`` = ``u_e, v1 .. v4`` of ``n`` samples; ``h = w = 0`` where nothing is erased.

    Both backends take the rectangles from here, so they erase exactly the same pixels.
    """
    u = np.asarray(u, dtype=np.float64)
    n = len(u)
    boxes = np.zeros((n, 4), np.int64)
    if spec.erase <= 0 or n == 0:
        return boxes
    area = SIDE * SIDE * (ERASE_MIN_AREA + (spec.erase_area - ERASE_MIN_AREA) * u[:, 1])
    lo, hi = math.log(ERASE_RATIOS[0]), math.log(ERASE_RATIOS[1])
    ratio = np.exp(lo + (hi - lo) * u[:, 2])
    h = np.clip(np.floor(np.sqrt(area * ratio) + 0.5), 1, SIDE)
    w = np.clip(np.floor(area / h + 0.5), 1, SIDE)
    y0 = np.floor(u[:, 3] * (SIDE - h + 1))
    x0 = np.floor(u[:, 4] * (SIDE - w + 1))
    on = u[:, 0] < spec.erase
    boxes[on] = np.stack([y0, x0, h, w], axis=1)[on].astype(np.int64)
    return boxes


def erase_draws(keys: np.ndarray, spec: AugmentSpec) -> np.ndarray:
    """The erasing draws ``u_e, v1 .. v4`` (``(n, 5)`` float64) of the samples with keys ``keys``."""
    first = spec.flip_draw() + N_FLIP_DRAWS
    j = np.arange(first, first + N_ERASE_DRAWS, dtype=np.uint64)
    return _keys.uniform(keys[:, None], j[None, :])


def elastic_grid(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The elastic field's weights ``A (SIDE, K)`` (float64) and each row's nonzero band ``[lo, hi)``.

    ``K`` is the smallest count of points at spacing ``sigma``, centred on the
    image, that reaches at least ``3 sigma`` beyond its first and last pixel.
    """
    K = math.ceil((SIDE - 1 + 6 * sigma) / sigma) + 1
    g = CENTRE + (np.arange(K) - (K - 1) / 2) * sigma
    t = np.arange(SIDE)[:, None] - g[None, :]
    A = np.exp(-t * t / (2 * sigma * sigma)) / (math.sqrt(2 * math.pi) * sigma)
    A[np.abs(t) > 3 * sigma] = 0.0
    nonzero = A != 0
    lo = nonzero.argmax(axis=1)
    hi = K - nonzero[:, ::-1].argmax(axis=1)
    return A, lo.astype(np.int64), hi.astype(np.int64)


def distort(X, spec: AugmentSpec, *, seed: int = 0, epoch: int = 0, backend: str = "numpy") -> np.ndarray:
    """Distorted copies of images ``X (n, 784)`` or ``(n, 28, 28)`` in [0, 1], as training epoch
    ``epoch`` of a run with ``seed`` sees them (row ``i`` keyed as training row ``i``); same shape.

    For figures (originals beside their distorted versions) and for looking at a spec's effect.
    """
    from .backends import get_backend

    X = np.asarray(X)
    shape = X.shape
    if X.ndim == 3 and shape[1:] == (SIDE, SIDE):
        X = X.reshape(len(X), SIDE * SIDE)
    if X.ndim != 2:
        raise FastnnError(f"expected images of shape (n, 784) or (n, 28, 28), got {shape}")
    check_images(X.shape[1])
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty_like(X)
    get_backend(backend).augment(X, seed, epoch, spec, out)
    return out.reshape(shape)
