"""What ``tfpvae evaluate`` adds to the bounds: latent use and outlier AUROCs.

Kept apart from :mod:`tfpvae.interfaces.cli` so that the parser still loads
without TensorFlow: the heavy imports happen inside the functions.
"""

from __future__ import annotations

from typing import Any


def latent_and_outlier_lines(metrics: dict[str, Any]) -> list[str]:
    """The active units, KL per dimension and outlier AUROCs of ``metrics``, if there."""
    lines: list[str] = []
    if "active_units" in metrics:
        kl = metrics.get("kl_per_dimension")
        per_dim = "" if kl is None else ", KL per dim " + " ".join(f"{v:.2f}" for v in kl[:10])
        more = " …" if kl is not None and len(kl) > 10 else ""
        lines.append(
            f"latent use: active units {metrics['active_units']} of {len(metrics['unit_activity'])}"
            f"{per_dim}{more}"
        )
    if "outliers" in metrics:
        report = metrics["outliers"]
        lines.append(
            f"outliers: {report['dataset']} test images ({report['n_outliers']}) against "
            f"{report['n_inliers']} of the model's own, AUROC of each score (k={report['k']}):"
        )
        lines += [f"  {name:<12s}{value:8.3f}" for name, value in report["auroc"].items()]
    return lines


def outlier_report_of_run(vae: Any, data: Any, settings: Any, dataset: str) -> dict[str, Any]:
    """AUROCs of the outlier scores: the run's test split against ``dataset``'s test split.

    Raises:
        ValueError: For a conditional VAE, whose bounds are on log p(x|y).
    """
    import dataclasses

    if vae.num_classes is not None:
        raise ValueError(
            "outlier scores need a bound on log p(x); a conditional VAE bounds log p(x|y) for "
            "a label the other dataset does not share: train a model without --conditional"
        )

    from tfpvae.evaluation.outliers import outlier_report
    from tfpvae.interfaces.run import load_run_data

    other = load_run_data(dataclasses.replace(settings, dataset=dataset), vae.config.likelihood)
    assert data.pixels_test is not None and other.pixels_test is not None  # load_run_data's
    report = outlier_report(
        vae,
        (data.x_test, data.pixels_test),
        (other.x_test, other.pixels_test),
        reference=data.x_train[:1000],
        k=settings.eval_k,
        seed=settings.seed,
    )
    return {"dataset": dataset, **report}
