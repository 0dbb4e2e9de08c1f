"""The one frozen configuration shared by ``build_vae``, the CLI and save/load."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from tfpvae.components.concentration import CONCENTRATIONS, DEFAULT_CONCENTRATION
from tfpvae.components.kl import KL_ATTACHMENTS
from tfpvae.components.likelihoods import LIKELIHOODS
from tfpvae.components.posteriors import POSTERIORS
from tfpvae.components.precision import PRECISIONS
from tfpvae.components.priors import PRIORS
from tfpvae.components.trunks import ARCHITECTURES, TrunkSizes
from tfpvae.objectives import OBJECTIVES
from tfpvae.objectives.base import refuse_options
from tfpvae.objectives.free_bits import check_free_bits_value
from tfpvae.objectives.gradients import check_gradient, gradient_name
from tfpvae.objectives.renyi import check_alpha

#: The objectives whose options (``alpha``, ``gradient``, ``free_bits``) the config checks.
BUILTIN_OBJECTIVES = ("elbo", "iwae", "renyi")


@dataclass(frozen=True)
class VAEConfig:
    """Everything needed to rebuild a VAE, validated on construction.

    Attributes:
        likelihood: Decoder likelihood name (see ``tfpvae.LIKELIHOODS``). The course
            uses ``"beta"``.
        concentration: How ``likelihood="beta"`` maps the decoder's outputs to its
            concentrations (see ``tfpvae.components.concentration``): ``"exp"``, the
            course's exponential, guarded against overflow and capped at 3,000 (the
            default), or ``"softplus"``, the earlier default, which fits sharp pixels
            slowly.
        latent_dim: Size of z. 2 lets the latent space be plotted directly. ``None``
            (the default) is 2, or what the posterior family fixes
            (``categorical_dims × categories`` for ``"relaxed_categorical"``). A pair
            ``(z1, z2)``, bottom first, gives two stochastic layers,
            q(z1|x) q(z2|z1) and p(z2) p(z1|z2) p(x|z1) (Burda et al., 2015; see
            ``tfpvae.components.hierarchy``); the codes and figures are then z2's.
        hidden_units: Dense widths of the encoder; the decoder mirrors them. The
            course's encoder narrows 256 → 64.
        input_shape: Image shape, also the decoder's event shape. 28×28 for
            (Fashion-)MNIST, 8×8 for the digits; ``(n,)`` for a vector of n
            features (``architecture="mlp"`` only).
        architecture: ``"mlp"`` (the course) or ``"conv"`` (the Keras conv VAE).
        posterior: ``"full"`` (MultivariateNormalTriL, the course), ``"diag"`` or
            ``"relaxed_categorical"`` (Gumbel-softmax, see ``tfpvae.components.categorical``),
            ``"iaf"`` (inverse autoregressive flow), ``"planar"`` or ``"radial"`` (Rezende &
            Mohamed's flows, see ``tfpvae.components.planar_radial``); flows: sampled KL only.
        kl: ``"add_loss"`` (KLDivergenceAddLoss, the course) or ``"regularizer"``.
        use_exact_kl: Closed-form KL instead of TFP's sampled default.
        kl_weight: β of β-VAE; 1 is the ELBO.
        kl_samples: Test points per example for the sampled KL; 1 is TFP's default
            (the objective then estimates it at the draws of z its decoder sees).
        objective: What training minimises (see ``tfpvae.OBJECTIVES``); ``"elbo"``
            is the course's negative ELBO.
        n_samples: Draws of z per image in the ``"elbo"`` objective; 1 is the course's.
        iwae_k: K, importance samples per image of the ``"iwae"`` objective (≥ 1;
            K = 1 is the single-sample ELBO).
        alpha: α of ``objective="renyi"`` (≠ 1; 0 is the IWAE bound, α → 1 the
            ELBO); ``None`` for the other objectives, which refuse it. Its K is ``n_samples``.
        gradient: The gradient estimator (``tfpvae.objectives.gradients.GRADIENTS``):
            ``"standard"`` (the default), ``"dreg"`` (``"iwae"``, ``"renyi"``) or ``"stl"``
            (``"elbo"``); the loss's value is the same.
        free_bits: λ: each latent dimension's batch-mean KL floored at λ nats
            (``objective="elbo"``, Gaussian posteriors, a factorised prior); 0 is off.
        num_flows: Flows of ``posterior="iaf"`` (autoregressive), ``"planar"`` or ``"radial"``.
        flow_hidden_units: Hidden widths of each flow's autoregressive network
            (``posterior="iaf"``); the encoder's context vector has the first width.
        learning_rate: Adam's step size; 1e-3 is Keras's default.
        conv_filters: Filters of the stride-2 conv layers (``architecture="conv"``).
        fast_path: Train and evaluate through the fused, XLA-compiled objective
            (same maths, see ``tfpvae.objectives.fused``); ``False`` uses the TFP layer graph.
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"`` for the
            trunks; distributions and losses stay float32 (see ``tfpvae.components.precision``).
        prior: A registered prior (see ``tfpvae.components.priors.PRIORS``):
            ``"standard_normal"`` (the posterior family's standard prior), ``"mixture"``
            (learned Gaussian mixture) or ``"vamp"`` (VampPrior); learned priors need
            the sampled KL.
        prior_components: Mixture components, or VampPrior pseudo-inputs.
        categorical_dims: N, categorical variables of ``"relaxed_categorical"``.
        categories: K, classes of each of them.
        temperature: The initial Gumbel-softmax temperature τ of ``"relaxed_categorical"``.
        top_hidden_units: Widths of the tanh layers of q(z2|z1) and p(z1|z2) when
            ``latent_dim=(z1, z2)``; the IWAE paper uses two (of 100 and 50 units), two
            small ones keep the step cheap; ``()`` makes both conditionals linear-Gaussian.
        num_classes: C of a conditional VAE, q(z|x, y) and p(x|z, y) with the label's
            one-hot concatenated to the encoder trunk's features and to z (see
            ``tfpvae.components.conditioning``); ``None`` (the default) is unconditional.
    """

    likelihood: str = "beta"
    concentration: str = DEFAULT_CONCENTRATION
    latent_dim: int | tuple[int, int] = None  # type: ignore[assignment]  # None: __post_init__
    hidden_units: tuple[int, ...] = (256, 64)
    input_shape: tuple[int, ...] = (28, 28)
    architecture: str = "mlp"
    posterior: str = "full"
    kl: str = "add_loss"
    use_exact_kl: bool = False
    kl_weight: float = 1.0
    kl_samples: int = 1
    objective: str = "elbo"
    n_samples: int = 1
    learning_rate: float = 1e-3
    conv_filters: tuple[int, ...] = (32, 64)
    fast_path: bool = True
    precision: str = "float32"
    prior: str = "standard_normal"
    prior_components: int = 10
    categorical_dims: int = 20
    categories: int = 10
    temperature: float = 1.0
    iwae_k: int = 5
    alpha: float | None = None
    gradient: str = "standard"  # None is read as "standard"
    free_bits: float = 0.0
    num_flows: int = 2
    flow_hidden_units: tuple[int, ...] = (64,)
    top_hidden_units: tuple[int, ...] = (32, 32)
    num_classes: int | None = None  # None: no label input (unconditional)

    def __post_init__(self) -> None:
        # JSON gives lists; store tuples so the config stays hashable and comparable.
        for name in (
            "hidden_units", "input_shape", "conv_filters", "flow_hidden_units",
            "top_hidden_units", "latent_dim",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        if self.latent_dim is None:
            object.__setattr__(self, "latent_dim", self._family_latent_dim())
        if self.gradient is None:
            object.__setattr__(self, "gradient", "standard")
        self.validate()

    def _family_latent_dim(self) -> int | None:
        """The posterior family's size of z, or :data:`DEFAULT_LATENT_DIM` where it is free."""
        try:
            size = POSTERIORS.get(self.posterior).latent_size(self)
        except (TypeError, ValueError):
            return None  # validate() names the field at fault
        return DEFAULT_LATENT_DIM if size is None else size

    def validate(self) -> None:
        """Checks every field; raises ``ValueError`` naming the field and the fix."""
        LIKELIHOODS.get(self.likelihood)
        CONCENTRATIONS.get(self.concentration)
        PRECISIONS.get(self.precision)
        architecture = ARCHITECTURES.get(self.architecture)
        POSTERIORS.get(self.posterior)
        KL_ATTACHMENTS.get(self.kl)
        OBJECTIVES.get(self.objective)
        self._validate_prior_and_family()  # latent_dim too: its size may be the family's
        self._validate_objective_options()
        _positive_int("kl_samples", self.kl_samples)
        _positive_int("n_samples", self.n_samples)
        _positive_int("num_flows", self.num_flows)
        _int_tuple("flow_hidden_units", self.flow_hidden_units)
        _int_tuple("top_hidden_units", self.top_hidden_units, allow_empty=True)
        if isinstance(self.iwae_k, bool) or not isinstance(self.iwae_k, int) or self.iwae_k < 1:
            raise ValueError(
                f"iwae_k must be a positive integer (K importance samples; 1 is the ELBO), "
                f"got {self.iwae_k!r}; use iwae_k >= 1, e.g. 5"
            )
        _int_tuple("hidden_units", self.hidden_units, allow_empty=self.architecture == "mlp")
        _int_tuple("input_shape", self.input_shape)
        _int_tuple("conv_filters", self.conv_filters)
        if len(self.input_shape) not in architecture.input_ranks:
            shapes = {1: "(features,)", 2: "(height, width)", 3: "(height, width, channels)"}
            allowed = " or ".join(shapes[r] for r in architecture.input_ranks)
            hint = ""
            if len(self.input_shape) == 1:
                hint = "; a vector of features needs architecture='mlp'"
            raise ValueError(
                f"input_shape for architecture={self.architecture!r} must be {allowed}, "
                f"got {self.input_shape}{hint}"
            )
        for flag in ("use_exact_kl", "fast_path"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if self.use_exact_kl and not POSTERIORS.get(self.posterior).exact_kl:
            raise ValueError(
                f"use_exact_kl=True but posterior={self.posterior!r} has no closed-form KL; "
                "use use_exact_kl=False (the sampled KL) or a Gaussian posterior ('full', 'diag')"
            )
        if self.num_classes is not None:
            if (
                isinstance(self.num_classes, bool)
                or not isinstance(self.num_classes, int)
                or (self.num_classes < 2)
            ):
                raise ValueError(
                    f"num_classes must be an integer >= 2 (the classes of the label y), or None "
                    f"for an unconditional VAE; got {self.num_classes!r}"
                )
            if PRIORS.get(self.prior).needs_gaussian_posterior:
                raise ValueError(
                    f"prior={self.prior!r} encodes pseudo-inputs without labels, which a "
                    "conditional encoder q(z|x, y) needs; use prior='standard_normal' or "
                    "'mixture' with num_classes"
                )
        _finite_number("kl_weight", self.kl_weight, minimum=0.0, strict=False)
        _finite_number("learning_rate", self.learning_rate, minimum=0.0, strict=True)

    def _validate_prior_and_family(self) -> None:
        """The prior, the discrete latents and the combinations they allow."""
        prior, family = PRIORS.get(self.prior), POSTERIORS.get(self.posterior)
        for name in ("prior_components", "categorical_dims", "categories"):
            _positive_int(name, getattr(self, name))
        if self.categories < 2:
            raise ValueError(f"categories must be at least 2, got {self.categories}")
        _finite_number("temperature", self.temperature, minimum=0.0, strict=True)
        if prior.learned and self.use_exact_kl:
            raise ValueError(
                f"use_exact_kl=True is impossible with prior={self.prior!r}: TFP has no "
                "closed-form KL to a learned prior; use the sampled KL (use_exact_kl=False, "
                "no --exact-kl)"
            )
        if prior.learned and not family.learned_priors:
            raise ValueError(
                f"prior={self.prior!r} does not apply to posterior={self.posterior!r}, which "
                "has its own standard prior; use prior='standard_normal'"
            )
        if prior.needs_gaussian_posterior and not family.exact_kl:
            raise ValueError(
                f"prior={self.prior!r} is a mixture of the posterior's own family at learned "
                f"pseudo-inputs, which posterior={self.posterior!r} cannot form; use "
                "posterior='full' or 'diag', or prior='mixture'"
            )
        if self.objective in ("iwae", "renyi") and self.use_exact_kl:
            raise ValueError(
                f"objective={self.objective!r} weighs each draw by p(z)/q(z|x), so it has no "
                "closed-form KL to use; drop use_exact_kl (--exact-kl)"
            )
        if self.objective in ("iwae", "renyi") and family.latent_kind == "categorical":
            raise ValueError(
                f"objective={self.objective!r} needs log q(z|x) at reparameterised draws, which "
                f"posterior={self.posterior!r} does not have (its q is the exact categorical, "
                "its draws relaxed); use objective='elbo'"
            )
        if isinstance(self.latent_dim, tuple):
            self._validate_two_layers()
            return
        size = family.latent_size(self)
        _positive_int("latent_dim", self.latent_dim)
        if size is not None and self.latent_dim != size:
            raise ValueError(
                f"posterior={self.posterior!r} has a z of categorical_dims × categories = "
                f"{self.categorical_dims} × {self.categories} = {size} numbers, but "
                f"latent_dim={self.latent_dim}; set latent_dim={size} or leave it out"
            )

    def _validate_two_layers(self) -> None:
        """``latent_dim=(z1, z2)``: two positive sizes, and what two stochastic layers allow."""
        dims = tuple(self.latent_dims)
        if len(dims) != 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
            raise ValueError(
                f"latent_dim must be a positive integer or a pair (z1, z2) of them (two "
                f"stochastic layers, bottom first), got {dims!r}; e.g. latent_dim=(8, 4)"
            )
        if min(dims) < 1:
            raise ValueError(
                f"latent_dim=(z1, z2) needs two positive sizes, got {dims!r}; e.g. (8, 4)"
            )
        asks = [
            (self.posterior not in TWO_LAYER_BOTTOMS, f"posterior={self.posterior!r}",
             "q(z1|x) of two stochastic layers is a Gaussian: use posterior='full' or 'diag'"),
            (self.prior != "standard_normal", f"prior={self.prior!r}",
             "the top layer's prior p(z2) is N(0, I): use prior='standard_normal'"),
            (self.use_exact_kl, "use_exact_kl=True",
             "there is no closed-form KL to p(z2) p(z1|z2): use the sampled KL (no --exact-kl)"),
        ]  # fmt: skip
        for refused, what, fix in asks:
            if refused:
                raise ValueError(f"{what} does not work with latent_dim={dims!r}; {fix}")

    @property
    def latent_dims(self) -> tuple[int, ...]:
        """The sizes of the stochastic layers, bottom first: ``(d,)`` or ``(z1, z2)``."""
        dims = self.latent_dim
        return tuple(dims) if isinstance(dims, tuple) else (int(dims),)

    def _validate_objective_options(self) -> None:
        """``alpha``, ``gradient`` and ``free_bits`` against the objective and posterior."""
        builtin = self.objective in BUILTIN_OBJECTIVES
        gradient = check_gradient(self.objective, self.gradient) if builtin else None
        if gradient is None:
            gradient_name(self.gradient)
        free_bits = check_free_bits_value(self.free_bits)
        if self.objective == "renyi":
            check_alpha(self.alpha)
        elif builtin:
            refuse_options(self.objective, alpha=self.alpha)
        if builtin and self.objective != "elbo":
            refuse_options(self.objective, free_bits=free_bits)
        family = POSTERIORS.get(self.posterior)
        if free_bits and isinstance(self.latent_dim, tuple):
            raise ValueError(
                f"free_bits floors each dimension's KL to N(0, I), which two stochastic layers "
                f"(latent_dim={self.latent_dim!r}) do not have (p(z1|z2) is learned); use one "
                "layer or free_bits=0"
            )
        if free_bits and not family.exact_kl:
            raise ValueError(
                f"free_bits needs each latent dimension's KL, which posterior="
                f"{self.posterior!r} does not have; use posterior='diag' or 'full', or free_bits=0"
            )
        if free_bits and PRIORS.get(self.prior).learned:
            raise ValueError(
                f"free_bits needs a prior that factorises over the latent dimensions, not "
                f"prior={self.prior!r}; use prior='standard_normal' or free_bits=0"
            )
        if gradient == "stl" and family.latent_kind != "continuous":
            raise ValueError(
                f"gradient='stl' needs log q(z|x) at reparameterised draws, which "
                f"posterior={self.posterior!r} does not have; use gradient='standard'"
            )
        if gradient not in (None, "standard") and self.posterior == "planar":
            raise ValueError(
                f"gradient={gradient!r} needs log q(z|x) at any z with its exact gradient, "
                "which posterior='planar' (a bisection inverse) does not give; use "
                "gradient='standard', or posterior='radial' or 'iaf'"
            )
        if gradient == "stl" and free_bits:
            raise ValueError("gradient='stl' and free_bits do not combine; use one of them")

    @property
    def trunk_sizes(self) -> TrunkSizes:
        """The layer sizes the trunks are built from."""
        return TrunkSizes(self.input_shape, self.hidden_units, self.conv_filters)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def to_json(self) -> str:
        """The config as pretty JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        """Builds a config, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> VAEConfig:
        """Builds the config a saved model was trained with.

        A saved config holds every field its version had; a field added since
        takes the value that reproduces what the old file meant
        (:data:`SAVED_BEFORE`), not today's default.
        """
        return cls.from_dict({**SAVED_BEFORE, **data})

    @classmethod
    def from_json(cls, text: str) -> VAEConfig:
        """Parses :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> VAEConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


#: The posterior families q(z1|x) of two stochastic layers may be.
TWO_LAYER_BOTTOMS = ("full", "diag")

#: ``latent_dim`` when neither the user nor the posterior family sets it.
DEFAULT_LATENT_DIM = 2

#: Fields whose default changed after saved configs could lack them, with the value
#: such a config was trained with (the Beta's softplus map, before issue 22).
SAVED_BEFORE: dict[str, Any] = {"concentration": "softplus"}


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _int_tuple(name: str, value: tuple, allow_empty: bool = False) -> None:
    if not isinstance(value, tuple):
        raise ValueError(f"{name} must be a list of positive integers, got {value!r}")
    if not allow_empty and len(value) == 0:
        raise ValueError(f"{name} must not be empty")
    for v in value:
        _positive_int(f"every entry of {name}", v)


def _finite_number(name: str, value: object, minimum: float, strict: bool) -> None:
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    ok = math.isfinite(number) and (number > minimum if strict else number >= minimum)
    if not ok:
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {minimum:g}, got {value!r}")
