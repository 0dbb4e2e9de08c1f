"""The course's VAE recipe, as published, as the benchmark's reference.

A Sequential MLP encoder (256, 64) ending in a 2-d ``MultivariateNormalTriL``
with ``KLDivergenceAddLoss``; a mirrored decoder whose last Dense layer has an
``exponential`` activation feeding a ``DistributionLambda`` over independent
Betas (or the Bernoulli / continuous Bernoulli equivalents); for the conv
architecture, the Keras convolutional VAE's trunk with a final 3×3
``Conv2DTranspose`` emitting the parameters per pixel; the loss
``-reduce_sum(log_prob)``; trained with ``fit``. Nothing here is tuned.
"""

from __future__ import annotations

import numpy as np

from tfpvae._backend import tf, tfd, tfk, tfpl

Dense, Flatten, Reshape = tfk.layers.Dense, tfk.layers.Flatten, tfk.layers.Reshape


def _params(event_shape, per_pixel, architecture, activation=None):
    """The last parameter layer: Dense for the MLP, a 3×3 Conv2DTranspose for conv."""
    if architecture == "conv":
        return [
            tfk.layers.Conv2DTranspose(per_pixel, 3, padding="same", activation=activation),
            Reshape((*event_shape, per_pixel)),
        ]
    return [
        Dense(per_pixel * int(np.prod(event_shape)), activation=activation),
        Reshape((*event_shape, per_pixel)),
    ]


def _beta_head(event_shape, architecture):
    return [
        *_params(event_shape, 2, architecture, activation="exponential"),
        tfpl.DistributionLambda(
            lambda t: tfd.Independent(
                tfd.Beta(concentration1=t[..., 0], concentration0=t[..., 1]),
                reinterpreted_batch_ndims=len(event_shape),
            )
        ),
    ]


def _bernoulli_head(event_shape, architecture):
    return [
        *_params(event_shape, 1, architecture),
        Flatten(),
        tfpl.IndependentBernoulli(event_shape),
    ]


def _continuous_bernoulli_head(event_shape, architecture):
    return [
        *_params(event_shape, 1, architecture),
        Reshape(event_shape),
        tfpl.DistributionLambda(
            lambda t: tfd.Independent(
                tfd.ContinuousBernoulli(logits=t), reinterpreted_batch_ndims=len(event_shape)
            )
        ),
    ]


HEADS = {
    "beta": _beta_head,
    "bernoulli": _bernoulli_head,
    "continuous_bernoulli": _continuous_bernoulli_head,
}


def _conv_trunks(event_shape, latent_size):
    h, w = event_shape
    encoder = [
        Reshape((h, w, 1), input_shape=event_shape),
        tfk.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        tfk.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        Flatten(),
        Dense(64, activation="relu"),
    ]
    decoder = [
        Dense((h // 4) * (w // 4) * 64, activation="relu", input_shape=(latent_size,)),
        Reshape((h // 4, w // 4, 64)),
        tfk.layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
        tfk.layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
    ]
    return encoder, decoder


def build_recipe_vae(
    likelihood: str = "beta",
    latent_size: int = 2,
    event_shape: tuple[int, int] = (28, 28),
    architecture: str = "mlp",
) -> tfk.Model:
    """The course's VAE, compiled with its batch-summed negative log-likelihood."""
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(latent_size))
    if architecture == "mlp":
        encoder_trunk = [
            Flatten(input_shape=event_shape),
            Dense(256, activation="relu"),
            Dense(64, activation="relu"),
        ]
        decoder_trunk = [
            Dense(64, activation="relu", input_shape=(latent_size,)),
            Dense(256, activation="relu"),
        ]
    else:
        encoder_trunk, decoder_trunk = _conv_trunks(event_shape, latent_size)
    encoder = tfk.Sequential(
        [
            *encoder_trunk,
            Dense(tfpl.MultivariateNormalTriL.params_size(latent_size)),
            tfpl.MultivariateNormalTriL(latent_size),
            tfpl.KLDivergenceAddLoss(prior),
        ]
    )
    decoder = tfk.Sequential([*decoder_trunk, *HEADS[likelihood](event_shape, architecture)])
    vae = tfk.Model(inputs=encoder.inputs, outputs=decoder(encoder.outputs))

    def log_loss(x_true, p_x_given_z):
        return -tf.reduce_sum(p_x_given_z.log_prob(x_true))

    vae.compile(loss=log_loss, optimizer="adam")
    return vae
