"""From the networks and prior handed to :class:`~tfpvae.VAE` to its objective's parts.

One probe call of each network at construction gives the sizes (z, the image
shape) and checks that the pieces fit together; the KL settings, the prior and β
are taken from the arguments first, then from the encoder's KL layer, then from
the defaults (N(0, I); the closed-form KL where TFP has one; β = 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tfpvae._backend import tf, tfd
from tfpvae.components.conditioning import Conditioning
from tfpvae.components.kl import KLEstimator, has_closed_form_kl
from tfpvae.components.parts import (
    Network,
    PriorSource,
    inspect_decoder,
    inspect_encoder,
    likelihood_of,
)
from tfpvae.components.posteriors import family_of
from tfpvae.components.priors import check_prior, standard_normal_prior
from tfpvae.components.stacked import stacked
from tfpvae.objectives import Parts


@dataclass(frozen=True)
class Resolved:
    """The parts, and the image shape the encoder takes."""

    parts: Parts
    image_shape: tuple[int, ...]


def image_shape_of(encoder: Any) -> tuple[int, ...]:
    """The shape of one image the encoder takes (its input shape without the batch)."""
    try:
        shape = encoder.input_shape
    except (AttributeError, RuntimeError, ValueError):
        shape = None
    if isinstance(shape, list) and shape:  # a conditional encoder: [images, one_hot]
        shape = shape[0]
    if not isinstance(shape, tuple) or len(shape) < 2 or None in shape[1:]:
        raise ValueError(
            "the encoder has no fixed input shape yet; give its first layer input_shape=... "
            "(e.g. tf_keras.layers.Flatten(input_shape=(28, 28))) or build it before VAE(...)"
        )
    return tuple(int(d) for d in shape[1:])


def _kl_weight(kl_weight: Any, attached: Any) -> tf.Variable:
    """β as a non-trainable variable: the argument, else the KL layer's ``weight``, else 1."""
    value = kl_weight if kl_weight is not None else attached
    if isinstance(value, tf.Variable):
        return value
    return tf.Variable(1.0 if value is None else float(value), trainable=False, name="kl_weight")


def resolve_parts(
    encoder: Any,
    decoder: Any,
    prior: Any,
    kl_weight: Any,
    use_exact_kl: bool | None,
    noise: tf.random.Generator,
    fast_path: bool,
) -> Resolved:
    """Inspects and checks the networks; returns the model's parts.

    Raises:
        ValueError: With what to change, when a network does not return a
            distribution, the shapes do not fit, or an exact KL has no closed form.
    """
    posterior_net, attachment = inspect_encoder(encoder)
    likelihood_net = inspect_decoder(decoder)
    image_shape = image_shape_of(encoder)
    conditioning = _conditioning(posterior_net, likelihood_net)
    probe_q, probe_p = posterior_net, likelihood_net
    if conditioning is not None:  # probe with the labels of class 0 bound in
        probe_q, probe_p = (
            net.given(tf.one_hot([0], conditioning.num_classes)) for net in (probe_q, probe_p)
        )
    q = probe_q.distribution(tf.zeros([1, *image_shape]), training=False)
    if not isinstance(q, tfd.Distribution) or q.event_shape.rank != 1:
        raise ValueError(
            "the encoder must return a tfd.Distribution over vectors z (event shape (d,)), "
            f"e.g. end it in tfpl.MultivariateNormalTriL(d); got {type(q).__name__}"
        )
    latent_dim = int(q.event_shape[0])
    family = family_of(posterior_net.layer)
    if prior is None:
        prior = attachment.prior if attachment is not None else None
    if prior is None:
        prior = standard_normal_prior(latent_dim)
    source = PriorSource(prior)
    prior_now = source.distribution()
    check_prior(prior_now, latent_dim)

    estimator = (
        attachment.estimator if attachment else KLEstimator(has_closed_form_kl(q, prior_now))
    )
    if use_exact_kl is not None:
        estimator = dataclasses.replace(estimator, use_exact_kl=bool(use_exact_kl))
    if family.exact_rate:
        estimator = dataclasses.replace(estimator, use_exact_kl=True)
    if estimator.use_exact_kl and not has_closed_form_kl(q, prior_now):
        raise ValueError(
            f"the exact KL was asked for, but TFP has no closed-form KL between "
            f"{type(q).__name__} and {type(prior_now).__name__}; use the sampled KL "
            "(use_exact_kl=False) or a prior of the posterior's family"
        )

    latent_dims = _latent_dims(q, prior_now, latent_dim)
    p = probe_p.distribution(tf.zeros([1, latent_dim]), training=False)
    if not isinstance(p, tfd.Distribution):
        raise ValueError(
            "the decoder must return a tfd.Distribution over images (end it in a tfpl layer "
            f"such as tfpl.IndependentBernoulli); got {type(p).__name__}"
        )
    if tuple(p.event_shape.as_list()) != image_shape:
        raise ValueError(
            f"the decoder's distribution has event shape {tuple(p.event_shape.as_list())}, but the "
            f"encoder takes images of shape {image_shape}; make them equal (e.g. "
            f"tfpl.IndependentBernoulli({image_shape}))"
        )
    parts = Parts(
        encoder=posterior_net,
        decoder=likelihood_net,
        prior=source,
        kl=estimator,
        kl_weight=_kl_weight(kl_weight, attachment.weight if attachment else None),
        family=family,
        likelihood=likelihood_of(likelihood_net.layer) if likelihood_net.layer else None,
        latent_dim=latent_dim,
        noise=noise,
        fast_path=fast_path,
        latent_dims=latent_dims,
        conditioning=conditioning,
    )
    return Resolved(parts, image_shape)


def _latent_dims(q: tfd.Distribution, prior: tfd.Distribution, latent_dim: int) -> tuple[int, ...]:
    """``(latent_dim,)``, or ``(z1, z2)`` when q and p are both two stochastic layers.

    Raises:
        ValueError: When only one of them is, or their sizes differ.
    """
    chains = stacked(q), stacked(prior)
    if chains[0] is None and chains[1] is None:
        return (latent_dim,)
    if chains[0] is None or chains[1] is None or chains[0].sizes != chains[1].sizes:
        sizes = [None if c is None else c.sizes for c in chains]
        raise ValueError(
            f"two stochastic layers need a two-layer posterior and prior of the same sizes "
            f"(TwoLayerPosterior and TwoLayerPrior), got sizes {sizes[0]} and {sizes[1]}; "
            "build both with the same latent_dims=(z1, z2)"
        )
    return chains[0].sizes


def _conditioning(encoder: Network, decoder: Network) -> Conditioning | None:
    """The label input both networks share, or ``None``; refuses one without the other."""
    if encoder.conditioning == decoder.conditioning:
        return encoder.conditioning
    if encoder.conditioning is None or decoder.conditioning is None:
        which, other = ("encoder", "decoder") if decoder.conditioning is None else (
            "decoder", "encoder")  # fmt: skip
        raise ValueError(
            f"the {which} takes labels (a second input of one-hot rows) but the {other} does "
            f"not; a conditional VAE gives both networks the label: [images, one_hot] → q(z|x, y) "
            "and [z, one_hot] → p(x|z, y)"
        )
    raise ValueError(
        f"the encoder takes {encoder.conditioning.num_classes} classes but the decoder "
        f"{decoder.conditioning.num_classes}; give both the same one-hot width"
    )
