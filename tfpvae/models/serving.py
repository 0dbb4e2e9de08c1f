r"""Serving signatures of a VAE, and its export as a SavedModel.

``vae.save(path)`` (and ``tfpvae export RUN_DIR OUT``) write a SavedModel whose
signatures take and return plain tensors, so that ``tf.saved_model.load(path)``
serves the model in a process that has never imported tfpvae, TFP or tf_keras:

``encode(images)``
    ``images``: float32 ``[batch, *input_shape]``. Returns ``mean`` ``[batch, d]``
    (E[z | x]), ``stddev`` ``[batch, d]`` (the marginal standard deviation of each
    latent dimension) and ``scale_tril`` ``[batch, d, d]`` (the lower-triangular
    Cholesky factor L of the posterior covariance L Lᵀ; diagonal for
    ``posterior="diag"``).
``decode(z)``
    ``z``: float32 ``[batch, d]``. Returns ``mean`` ``[batch, *input_shape]``, the
    likelihood's mean E[x | z].
``sample(n, seed)``
    ``n``: int32 scalar; ``seed``: int32 ``[2]`` (a stateless seed: the same seed
    gives the same images). Returns ``z`` ``[n, d]`` drawn from the prior and
    ``images`` ``[n, *input_shape]``, the likelihood means at those ``z``.

With two stochastic layers (``latent_dim=(z1, z2)``) d is z2's size: ``encode``
returns the top layer's code E[z2 | z1 = E[z1 | x]] (no ``stddev`` or
``scale_tril``), ``decode`` takes a top-layer code (decoded at z1 = E[z1 | z2]),
and ``sample`` returns the z2 of each draw (z2, z1) ~ p(z2) p(z1|z2), its images
the likelihood means at the drawn z1.
``elbo(images, seed)``
    ``images`` as for ``encode``; ``seed``: int32 ``[2]``. Returns per-image
    ``elbo``, ``rate`` and ``distortion`` ``[batch]`` in nats, from one draw
    z ~ q(z | x): ``distortion = -log p(x | z)``, ``rate = KL(q(z|x) ‖ p(z))``
    (closed form when TFP has it, else ``log q(z) - log p(z)`` at the same z) and
    ``elbo = -(rate + distortion)`` (β = 1, the bound itself). With
    ``seed = [s, 0]`` the draws are those of :func:`tfpvae.elbo` with
    ``seed=s``, ``n_samples=1`` and the images in one batch.

A conditional VAE (``num_classes=C``) takes its class ids ``labels`` (int32
``[batch]``) in each signature: ``encode(images, labels)``, ``decode(z, labels)``,
``sample(labels, seed)`` (one image per label, so ``n`` is the number of labels)
and ``elbo(images, seed, labels)``.

``serving_default``
    ``encode`` again, for clients that name no signature (TensorFlow Serving,
    ``saved_model_cli`` without ``--signature_def``): its one input is the images,
    it needs no seed and it answers the same every time.

Every signature checks its inputs in the served graph and refuses a bad request
(another shape, raw 0–255 pixels for a likelihood on (0, 1), non-finite values)
with an ``InvalidArgumentError`` that says what it expects
(:mod:`tfpvae.models.serving_checks`). The input specs give the dtype only, so
that no shape is assumed before the check.

The serving functions are built from the model's own layers and variables (the
posterior from its layer's own distribution function, the likelihood by its
layer's ``new``, from the parameters the networks emit), so they agree with
``vae.encoder(x)`` and ``vae.decoder(z)``. For the Gaussian posteriors the served
draws are those of :mod:`tfpvae.components.draws`; a flow or categorical is
drawn for the whole batch from the first image's key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tfpvae._backend import tf, tfd, tfk
from tfpvae.components.draws import image_keys, per_image_draws
from tfpvae.components.kl import rate_estimate
from tfpvae.components.likelihoods import log_prob
from tfpvae.models.serving_checks import (
    checked_codes,
    checked_count,
    checked_images,
    checked_labels,
    checked_seed,
)

if TYPE_CHECKING:
    from tfpvae.models.vae import VAE

#: The signature names written by :func:`export_saved_model` (besides ``serving_default``).
SIGNATURES = ("encode", "decode", "sample", "elbo")
#: The name TensorFlow Serving and ``saved_model_cli`` use when a client names no signature.
DEFAULT_SIGNATURE = "serving_default"
#: The function behind ``serving_default``: ``encode``, whose one input is the images
#: themselves (no seed), whose answer is deterministic, and which is what an
#: embedding or retrieval client asks for.
DEFAULT_FUNCTION = "encode"
#: What a SavedModel directory holds; :func:`export_to_directory` replaces only these.
SAVED_MODEL_ENTRIES = (
    "saved_model.pb",
    "keras_metadata.pb",
    "fingerprint.pb",
    "variables",
    "assets",
)

__all__ = [
    "DEFAULT_FUNCTION",
    "DEFAULT_SIGNATURE",
    "SAVED_MODEL_ENTRIES",
    "SIGNATURES",
    "export_saved_model",
    "export_to_directory",
    "is_keras_file",
    "serving_functions",
]


def is_keras_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a single-file Keras format (``.h5``, ``.hdf5``, ``.keras``)."""
    return str(path).lower().endswith((".h5", ".hdf5", ".keras"))


def _posterior_scale_tril(q: tfd.Distribution) -> tf.Tensor:
    """L with covariance L Lᵀ, ``[batch, d, d]``, for either posterior family."""
    if isinstance(q, tfd.MultivariateNormalTriL):
        return q.scale.to_dense()
    return tf.linalg.diag(q.stddev())  # independent dimensions: a diagonal L


def serving_functions(vae: VAE) -> dict[str, tf.types.experimental.GenericFunction]:
    """The four serving functions of ``vae``, as ``tf.function``s with input signatures.

    Args:
        vae: A built :class:`~tfpvae.VAE`.

    Returns:
        ``{"encode", "decode", "sample", "elbo"}`` → ``tf.function``. Each returns a
        dict of tensors (see the module docstring). Called in Python they run the
        model in-process; passed as ``signatures`` they become the SavedModel's.
    """
    parts = vae.parts
    latent_dim = vae.latent_dim  # a code's size (the top layer's with two layers)
    # Any shape is let in and checked inside (see serving_checks): a static spec would let
    # TensorFlow's graph optimiser assume a shape that a served request does not have.
    image_spec = tf.TensorSpec(None, tf.float32, name="images")
    seed_spec = tf.TensorSpec(None, tf.int32, name="seed")
    # A conditional VAE's signatures take the class ids beside their other inputs.
    labels = [] if vae.num_classes is None else [tf.TensorSpec(None, tf.int32, name="labels")]

    def images_for(signature: str, images: tf.Tensor) -> tf.Tensor:
        return checked_images(images, signature, tuple(vae.image_shape), parts.likelihood)

    def labels_for(signature: str, y: tf.Tensor | None, like: tf.Tensor | None) -> tf.Tensor | None:
        if y is None:
            return None
        return checked_labels(y, signature, vae.num_classes, like)

    def bound(y: tf.Tensor | None):
        return parts.given(y)  # the parts with the labels bound in (themselves without)

    def posterior(images: tf.Tensor, y: tf.Tensor | None) -> tfd.Distribution:
        # The layer's own distribution function of its parameters (a flow's networks
        # live in the layer), without the Keras call, whose tensor-coercible output
        # cannot be saved.
        return bound(y).posterior(images, training=False)

    def likelihood_of(z: tf.Tensor, y: tf.Tensor | None) -> tfd.Distribution:
        return bound(y).decode(z, training=False)

    def encode(images: tf.Tensor, labels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        images = images_for("encode", images)
        q = posterior(images, labels_for("encode", labels, images))
        codes = {"mean": parts.family.point(q)}
        with contextlib.suppress(NotImplementedError):  # a flow or categorical has no scale
            codes.update(stddev=q.stddev(), scale_tril=_posterior_scale_tril(q))
        return codes

    def decode(z: tf.Tensor, labels: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
        z = checked_codes(z, latent_dim)
        return {"mean": likelihood_of(parts.full_latent(z), labels_for("decode", labels, z)).mean()}

    def draw(n: tf.Tensor, seed: tf.Tensor, y: tf.Tensor | None) -> dict[str, tf.Tensor]:
        seed = checked_seed(seed, "sample")
        z = tf.reshape(vae.prior.sample(n, seed=seed), [n, parts.latent_dim])
        codes = z[:, parts.latent_dim - latent_dim :]  # the top layer's with two layers
        return {"z": codes, "images": likelihood_of(z, y).mean()}

    def sample(n: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        return draw(checked_count(n), seed, None)

    def sample_labelled(labels: tf.Tensor, seed: tf.Tensor) -> dict[str, tf.Tensor]:
        labels = checked_labels(labels, "sample", vae.num_classes, None)
        return draw(tf.size(labels), seed, labels)

    def elbo(
        images: tf.Tensor, seed: tf.Tensor, labels: tf.Tensor | None = None
    ) -> dict[str, tf.Tensor]:
        images, seed = images_for("elbo", images), checked_seed(seed, "elbo")
        labels = labels_for("elbo", labels, images)
        q = posterior(images, labels)
        # Image i's draw from the key (seed[0], 2 i + seed[1]): seed [s, 0] gives tfpvae.elbo's.
        keys = image_keys(seed[0], 0, tf.shape(images)[0], seed[1])
        z = per_image_draws(q, 1, keys)[0]
        p_x = likelihood_of(z, labels)
        distortion = -log_prob(p_x, images, parts.likelihood)
        rate = rate_estimate(q, vae.prior, z)  # the prior as it is now
        return {"elbo": -(rate + distortion), "rate": rate, "distortion": distortion}

    z_spec = tf.TensorSpec(None, tf.float32, name="z")
    if labels:
        draws = tf.function(sample_labelled, input_signature=[*labels, seed_spec])
    else:
        draws = tf.function(
            sample, input_signature=[tf.TensorSpec(None, tf.int32, name="n"), seed_spec]
        )
    return {
        "encode": tf.function(encode, input_signature=[image_spec, *labels]),
        "decode": tf.function(decode, input_signature=[z_spec, *labels]),
        "sample": draws,
        "elbo": tf.function(elbo, input_signature=[image_spec, seed_spec, *labels]),
    }


def export_saved_model(
    vae: VAE,
    path: str | os.PathLike,
    overwrite: bool = True,
    options: tf.saved_model.SaveOptions | None = None,
) -> str:
    """Writes ``vae`` as a SavedModel with the serving signatures of this module.

    This is what ``vae.save(path)`` does for a directory path. The SavedModel is
    also a Keras one, without layer traces: with tfpvae imported,
    ``tf_keras.models.load_model(path)`` rebuilds the model from its config (see
    :meth:`tfpvae.VAE.from_config`), which compiles it, and restores its weights
    and its optimizer's variables (step count, moments) into it.

    Args:
        vae: The model.
        path: A directory; not one of the single-file Keras formats.
        overwrite: Replace an existing SavedModel at ``path``.
        options: ``tf.saved_model.SaveOptions``, or ``None``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: If ``path`` ends in ``.h5``/``.hdf5``/``.keras``.
        FileExistsError: If ``path`` exists and ``overwrite`` is false.
    """
    path = os.fspath(path)
    if is_keras_file(path):
        raise ValueError(f"{path} names a single-file format; a SavedModel is a directory")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    functions = serving_functions(vae)
    signatures = {name: fn.get_concrete_function() for name, fn in functions.items()}
    signatures[DEFAULT_SIGNATURE] = signatures[DEFAULT_FUNCTION]
    # The metadata keeps the compile config: load_model compiles the model again
    # (VAE.compile keeps the optimizer that from_config built, into which Keras
    # restores the saved optimizer's variables).
    with _without_graph_parents_notice():
        tfk.Model.save(
            vae,
            path,
            overwrite=True,
            save_format="tf",
            signatures=signatures,
            options=options,
            save_traces=False,
        )
    return path


class _GraphParentsNotice(logging.Filter):
    """Drops TensorFlow's deprecation notice for ``LinearOperator.graph_parents``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "LinearOperator.graph_parents" not in record.getMessage()


@contextlib.contextmanager
def _without_graph_parents_notice() -> Iterator[None]:
    """Hides the one notice that a SavedModel save of TFP's distributions prints.

    TensorFlow lists every attribute of each trackable object it saves, the
    ``graph_parents`` property of the distributions' linear operators included,
    which logs a deprecation that no code of tfpvae's or the user's caused (its
    attempt to silence it lowers absl's logger, not TensorFlow's).
    """
    logger, notice = tf.get_logger(), _GraphParentsNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def export_to_directory(vae: VAE, out: str | os.PathLike, force: bool = False) -> Path:
    """Exports ``vae`` into ``out`` without ever losing a file that is already there.

    The SavedModel is written into a temporary sibling of ``out`` first, so a
    failed export leaves ``out`` as it was. ``out`` must be missing or empty
    unless ``force``; with ``force`` only the entries of an earlier SavedModel
    (:data:`SAVED_MODEL_ENTRIES`) are replaced and every other file stays.

    Args:
        vae: The model.
        out: The SavedModel directory.
        force: Replace a SavedModel in a non-empty ``out``.

    Returns:
        ``out`` as a ``Path``.

    Raises:
        FileExistsError: If ``out`` is a file, or a non-empty directory without ``force``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"{out} already holds files; choose another OUT or pass --force to replace "
            "the SavedModel in it (other files stay)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        export_saved_model(vae, staging)
        out.mkdir(exist_ok=True)
        for entry in SAVED_MODEL_ENTRIES:
            target = out / entry
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            if (staging / entry).exists():
                os.replace(staging / entry, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
