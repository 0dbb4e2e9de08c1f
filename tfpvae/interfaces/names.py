"""The names of every user-selectable variant, as plain tuples.

The command line builds its ``choices`` from these, so that ``tfpvae --help``
and argument errors answer without importing TensorFlow. Each tuple lists the
names of one registry in registration order; ``tests/test_cli.py`` checks that
they agree.

Example:
    >>> from tfpvae.interfaces.names import ARCHITECTURES
    >>> ARCHITECTURES
    ('mlp', 'conv')
"""

from __future__ import annotations

#: :data:`tfpvae.components.likelihoods.LIKELIHOODS`
LIKELIHOODS = (
    "bernoulli",
    "beta",
    "continuous_bernoulli",
    "discretized_logistic",
    "categorical",
    "gaussian",
)
#: :data:`tfpvae.components.concentration.CONCENTRATIONS`
CONCENTRATIONS = ("exp", "softplus")
#: :data:`tfpvae.components.trunks.ARCHITECTURES`
ARCHITECTURES = ("mlp", "conv")
#: :data:`tfpvae.components.posteriors.POSTERIORS`
POSTERIORS = ("full", "diag", "iaf", "planar", "radial", "relaxed_categorical")
#: :data:`tfpvae.components.priors.PRIORS`
PRIORS = ("standard_normal", "mixture", "vamp")
#: :data:`tfpvae.objectives.OBJECTIVES`
OBJECTIVES = ("elbo", "iwae", "renyi")
#: :data:`tfpvae.objectives.gradients.GRADIENTS`
GRADIENTS = ("standard", "dreg", "stl")
#: :data:`tfpvae.components.kl.KL_ATTACHMENTS`
KL_ATTACHMENTS = ("add_loss", "regularizer")
#: :data:`tfpvae.io.datasets.DATASETS`
DATASETS = ("digits", "fashion_mnist", "mnist")
#: :data:`tfpvae.training.distribute.STRATEGIES`
STRATEGIES = ("default", "mirrored", "multiworker")
#: :data:`tfpvae.components.precision.PRECISIONS`
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
