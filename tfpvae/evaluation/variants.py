r"""Train several model variants the same way and compare their held-out IWAE bounds.

A *variant* is a name and the :func:`~tfpvae.build_vae` arguments that make it
differ from the others (``{"objective": "iwae", "iwae_k": 5}``,
``{"posterior": "iaf"}``, ...); everything else (trunk, latent size, epochs,
batch size, seed, data) is shared, so a new variant is one line.

Every variant is judged by the same yardstick: the held-out IWAE bound
:math:`\mathcal L_k(x_i)` per test image (:func:`~tfpvae.evaluation.bounds.iwae_bound`).
With n test images the table gives the mean and its standard error
:math:`s/\sqrt n`, and, against a baseline variant, the mean of the *paired*
per-image differences :math:`\Delta_i = \mathcal L_k^{(v)}(x_i) - \mathcal L_k^{(0)}(x_i)`
with its own standard error :math:`s_\Delta/\sqrt n`. Pairing removes the
image-to-image spread the two share, so the paired SE is much smaller than
either bound's. A difference is called significant when
:math:`|\bar\Delta| > 1.96\,\mathrm{SE}(\bar\Delta)` (two-sided, 5 %). The SE
covers the test images and the importance samples; it does not cover the
training run's own randomness (one seed per variant).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfpvae._backend import tfk
from tfpvae.evaluation.bounds import iwae_bound
from tfpvae.evaluation.stats import standard_error
from tfpvae.models import build_vae

#: Two-sided 5 % threshold on |mean difference| / SE.
Z_95 = 1.96


@dataclass
class VariantComparison:
    """Per-image held-out bounds of several variants, and what they say.

    Attributes:
        bounds: Variant name → ``[n]`` IWAE bounds (nats per image).
        seconds_per_epoch: Variant name → median training seconds per epoch.
        baseline: The variant the differences are taken against.
        k: Importance samples of the bound.
        histories: Variant name → its Keras history.
        models: Variant name → the trained model (e.g. for ``model.sample(n)``).
    """

    bounds: dict[str, np.ndarray]
    seconds_per_epoch: dict[str, float]
    baseline: str
    k: int
    histories: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per variant: mean bound, SE, paired difference to the baseline, its SE."""
        base = self.bounds[self.baseline]
        out = []
        for name, bound in self.bounds.items():
            diff = bound - base
            diff_se = standard_error(diff)
            z = float(diff.mean() / diff_se) if diff_se > 0 else 0.0
            out.append(
                {
                    "variant": name,
                    "iwae": float(bound.mean()),
                    "se": standard_error(bound),
                    "diff": float(diff.mean()),
                    "diff_se": diff_se,
                    "z": z,
                    "significant": name != self.baseline and abs(z) > Z_95,
                    "s_per_epoch": self.seconds_per_epoch.get(name, float("nan")),
                }
            )
        return out

    def table(self) -> str:
        """The rows as a fixed-width text table."""
        header = (
            f"{'variant':<22s}{'IWAE (nats)':>13s}{'± SE':>8s}"
            f"{'Δ vs ' + self.baseline:>18s}{'± SE':>8s}{'z':>8s}  significant"
        )
        lines = [f"held-out IWAE bound, k = {self.k}, {len(self.bounds[self.baseline])} images"]
        lines.append(header)
        for r in self.rows():
            flag = "—" if r["variant"] == self.baseline else ("yes" if r["significant"] else "no")
            lines.append(
                f"{r['variant']:<22s}{r['iwae']:13.2f}{r['se']:8.2f}"
                f"{r['diff']:18.2f}{r['diff_se']:8.2f}{r['z']:8.1f}  {flag}"
            )
        return "\n".join(lines)

    def figure(self):
        """Two panels: each bound ± 2 SE, and each paired difference to the baseline ± 2 SE."""
        import matplotlib.pyplot as plt

        rows = self.rows()
        names = [r["variant"] for r in rows]
        y = np.arange(len(rows))
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.6 * len(rows) + 1.5), sharey=True)
        left.errorbar([r["iwae"] for r in rows], y, xerr=[2 * r["se"] for r in rows], fmt="o")
        left.set(yticks=y, yticklabels=names, xlabel=f"held-out IWAE bound (k={self.k}), nats")
        right.errorbar([r["diff"] for r in rows], y, xerr=[2 * r["diff_se"] for r in rows], fmt="o")
        right.axvline(0.0, color="grey", lw=1)
        right.set(xlabel=f"paired difference to {self.baseline} ± 2 SE, nats")
        left.invert_yaxis()
        fig.tight_layout()
        return fig


def compare_variants(
    variants: Mapping[str, Mapping[str, Any]],
    x_train: np.ndarray,
    x_test: np.ndarray,
    epochs: int,
    k: int = 1000,
    baseline: str | None = None,
    batch_size: int = 100,
    seed: int = 0,
    chunk_size: int = 100,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    **common: Any,
) -> VariantComparison:
    r"""Trains each variant on ``x_train`` and bounds it on ``x_test``.

    Args:
        variants: Name → :func:`~tfpvae.build_vae` arguments of that variant.
        x_train: Prepared training images.
        x_test: Prepared test images.
        epochs: Training epochs, the same for all.
        k: Importance samples of the held-out bound.
        baseline: The variant to compare against; the first one by default.
        batch_size: Images per training step.
        seed: Seeds each variant's initialisation and batches alike.
        chunk_size: Importance samples per decoder call in the bound.
        y_train: Class ids of ``x_train``, for conditional variants (``num_classes``),
            which train on ``(x_train, y_train)``.
        y_test: Class ids of ``x_test``: a conditional variant's bound is on
            :math:`\log p(x|y)`, not :math:`\log p(x)`, so its difference to an
            unconditional baseline includes what the label tells about the image.
        **common: :func:`~tfpvae.build_vae` arguments shared by all variants
            (``hidden_units``, ``latent_dim``, ``likelihood``, ...).

    Returns:
        A :class:`VariantComparison`.
    """
    if not variants:
        raise ValueError("variants is empty; give at least one name → build_vae arguments")
    baseline = baseline or next(iter(variants))
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {list(variants)}")
    bounds, seconds, histories, models = {}, {}, {}, {}
    for name, options in variants.items():
        tfk.utils.set_random_seed(seed)
        vae = build_vae(input_shape=x_train.shape[1:], **{**common, **options})
        timer = _EpochTimer()
        labelled = vae.num_classes is not None
        if labelled and (y_train is None or y_test is None):
            raise ValueError(
                f"variant {name!r} is conditional (num_classes={vae.num_classes}); pass the "
                "class ids as y_train= and y_test="
            )
        data = (x_train, y_train) if labelled else x_train
        history = vae.fit(
            data, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[timer]
        ).history
        histories[name] = {key: [float(v) for v in values] for key, values in history.items()}
        seconds[name] = float(np.median(timer.seconds))
        labels = y_test if labelled else None
        bounds[name] = iwae_bound(vae, x_test, k=k, chunk_size=chunk_size, seed=seed, labels=labels)
        models[name] = vae
    return VariantComparison(bounds, seconds, baseline, k, histories, models)


class _EpochTimer(tfk.callbacks.Callback):
    """Wall-clock seconds of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
