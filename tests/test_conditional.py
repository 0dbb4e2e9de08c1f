"""The conditional VAE: q(z|x, y) and p(x|z, y) with the label one-hot into both networks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import log_expit
from scipy.stats import multivariate_normal, norm

import tfpvae
from tfpvae._backend import tf, tfk, tfpl
from tfpvae.components.draws import image_keys, standard_normals
from tfpvae.evaluation.bounds import elbo, held_out_metrics, iwae_bound
from tfpvae.io.datasets import prepare
from tfpvae.objectives import FusedELBO

C = 10


@pytest.fixture(scope="module")
def data(digits):
    (x, y), _ = digits
    return prepare(x[:128], "bernoulli"), y[:128].astype("int64")


def _vae(**fields):
    return tfpvae.build_vae(
        likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,), num_classes=C, **fields
    )


def _by_hand(vae, x, labels, eps, exact_kl=False):
    """−ELBO per image from the Keras networks fed the one-hot by hand, in NumPy/SciPy.

    One draw z = μ + L ε; the sampled KL at that z (TFP's one test point),
    log q(z|x, y) − log N(z; 0, I), or the closed form
    ½(tr Σ + μᵀμ − d − log det Σ); the Bernoulli log-likelihood from the decoder's logits.
    """
    one_hot = np.eye(C, dtype="float32")[labels]
    q = vae.encoder([x, one_hot])  # the full Keras encoder: [images, one-hot] → q(z|x, y)
    loc, tril = q.mean().numpy(), q.scale.to_dense().numpy()
    z = loc + np.einsum("bij,bj->bi", tril, eps)
    log_q = np.array([multivariate_normal(loc[i], tril[i] @ tril[i].T).logpdf(z[i])
                      for i in range(len(x))])  # fmt: skip
    rate = log_q - norm.logpdf(z).sum(axis=1)
    if exact_kl:
        cov = np.einsum("bij,bkj->bik", tril.astype("float64"), tril)
        rate = 0.5 * (np.trace(cov, axis1=1, axis2=2) + (loc**2).sum(1) - 2
                      - np.linalg.slogdet(cov)[1])  # fmt: skip
    p = vae.decoder([z.astype("float32"), one_hot])
    logits = p.distribution.logits_parameter().numpy().astype("float64")
    log_lik = (x * log_expit(logits) + (1 - x) * log_expit(-logits)).sum(axis=(1, 2))
    return -log_lik + rate


def test_the_label_changes_the_decoded_image() -> None:
    vae = _vae()
    z = np.random.default_rng(0).standard_normal((1, 2)).astype("float32")
    means = vae.decode(np.repeat(z, 2, axis=0), labels=[3, 7]).numpy()
    assert np.abs(means[0] - means[1]).max() > 1e-3  # same z, two labels, two images
    again = vae.decode(z, labels=[3]).numpy()
    np.testing.assert_allclose(again[0], means[0], atol=1e-6)


def test_the_bound_is_computed_with_the_label_given(data) -> None:
    x, y = data[0][:16], data[1][:16]
    vae = _vae()
    assert isinstance(vae.objective, FusedELBO)  # the XLA path covers the conditional model
    eps = np.random.default_rng(1).standard_normal((16, 2)).astype("float32")
    terms = vae.objective.given(y).terms(tf.constant(x), (tf.constant(eps)[None], None))
    np.testing.assert_allclose(terms.loss.numpy(), _by_hand(vae, x, y, eps), rtol=1e-5, atol=1e-5)
    # Held out: tfpvae.elbo draws image i's noise from the key (seed, 2 i); its KL is exact.
    eps = standard_normals(image_keys(3, 0, 16, 0), tf.constant([1, 2]))[:, 0].numpy()
    held_out = elbo(vae, x, seed=3, labels=y).elbo
    expected = _by_hand(vae, x, y, eps, exact_kl=True)
    np.testing.assert_allclose(-held_out, expected, rtol=1e-5, atol=1e-5)
    wrong = elbo(vae, x, seed=3, labels=(y + 1) % C).elbo
    assert np.abs(wrong - held_out).min() > 1e-4  # every image's bound depends on its label
    general = _vae(fast_path=False, objective="iwae", iwae_k=1)
    general.set_weights(vae.get_weights())
    bound = iwae_bound(general, x, k=1, seed=3, labels=y)
    eps = standard_normals(image_keys(3, 0, 16, 1), tf.constant([1, 2]))[:, 0].numpy()
    np.testing.assert_allclose(-bound, _by_hand(vae, x, y, eps), rtol=1e-5, atol=1e-5)


def test_fit_on_arrays_and_on_a_tf_data_pipeline(data) -> None:
    x, y = data
    vae = _vae()
    start = vae.evaluate((x, y), verbose=0, return_dict=True)["loss"]
    history = vae.fit((x, y), epochs=3, batch_size=32, verbose=0, validation_split=0.25)
    assert sorted(history.history) == [
        "distortion", "loss", "rate", "val_distortion", "val_loss", "val_rate"
    ]  # fmt: skip
    pipeline = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(128, seed=0).batch(32)
    vae.fit(pipeline, epochs=2, verbose=0, validation_data=(x[:32], y[:32]))
    after = vae.evaluate(pipeline, verbose=0, return_dict=True)["loss"]
    assert after < start - 1.0  # about 4 nats here
    scores = []
    for form in (((x, y),), (x, y)):  # fit's pair, or Keras's x and y
        vae.noise.reset_from_seed(5)  # the same draws for both
        scores.append(vae.evaluate(*form, verbose=0))
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    one_hot = np.eye(C, dtype="float32")[y]  # one-hot rows work as the ids do
    assert np.isfinite(vae.fit((x, one_hot), epochs=1, verbose=0).history["loss"][0])


def test_sample_needs_labels_and_is_reproducible() -> None:
    vae = _vae()
    images = vae.sample(6, seed=3, labels=[0, 1, 2, 3, 4, 5]).numpy()
    assert images.shape == (6, 8, 8)
    np.testing.assert_array_equal(images, vae.sample(6, seed=3, labels=np.arange(6)).numpy())
    assert not np.allclose(images, vae.sample(6, seed=4, labels=np.arange(6)).numpy())
    one_class = vae.sample(4, seed=3, labels=2).numpy()  # one id stands for all n
    assert one_class.shape == (4, 8, 8)
    np.testing.assert_allclose(one_class[2], images[2], atol=1e-6)  # same z_2, same label
    assert vae.sample(2, seed=3, labels=[1, 1], mean=False).shape == (2, 8, 8)


def test_save_load_and_serving_take_labels(tmp_path, data) -> None:
    x, y = data[0][:8], data[1][:8]
    vae = _vae()
    vae.fit((x, y), epochs=1, verbose=0)
    z = np.random.default_rng(0).standard_normal((3, 2)).astype("float32")
    expected = vae.decode(z, labels=[1, 5, 9]).numpy()
    loaded = tfpvae.load(tfpvae.save(vae, tmp_path / "run"))
    assert loaded.num_classes == C
    np.testing.assert_allclose(loaded.decode(z, labels=[1, 5, 9]).numpy(), expected, atol=1e-6)
    vae.save(tmp_path / "saved")
    served = tf.saved_model.load(str(tmp_path / "saved"))
    mean = served.signatures["decode"](z=tf.constant(z), labels=tf.constant([1, 5, 9]))["mean"]
    np.testing.assert_allclose(mean.numpy(), expected, atol=1e-6)
    bound = served.signatures["elbo"](
        images=tf.constant(x), seed=tf.constant([2, 0]), labels=tf.constant(y, tf.int32)
    )["elbo"]
    np.testing.assert_allclose(bound.numpy(), elbo(vae, x, seed=2, labels=y).elbo, atol=1e-4)
    drawn = served.signatures["sample"](labels=tf.constant([0, 1, 2]), seed=tf.constant([1, 0]))
    assert drawn["images"].shape == (3, 8, 8) and drawn["z"].shape == (3, 2)


def test_user_networks_with_a_label_input(tmp_path, data) -> None:
    x, y = data
    image, label, z = tfk.Input((8, 8)), tfk.Input((C,)), tfk.Input((2,))
    h = tfk.layers.Concatenate()([tfk.layers.Flatten()(image), label])
    params = tfk.layers.Dense(tfpl.IndependentNormal.params_size(2))(h)
    encoder = tfk.Model([image, label], tfpl.IndependentNormal(2)(params))
    h = tfk.layers.Dense(16, activation="relu")(tfk.layers.Concatenate()([z, label]))
    logits = tfk.layers.Dense(tfpl.IndependentBernoulli.params_size((8, 8)))(h)
    decoder = tfk.Model([z, label], tfpl.IndependentBernoulli((8, 8))(logits))
    vae = tfpvae.VAE(encoder, decoder)
    vae.compile(optimizer="adam")
    assert vae.num_classes == C
    vae.fit((x, y), epochs=1, batch_size=32, verbose=0)
    again = tfpvae.load(tfpvae.save(vae, tmp_path / "mine"))
    np.testing.assert_allclose(
        again.encode(x[:4], labels=y[:4]).numpy(), vae.encode(x[:4], labels=y[:4]).numpy(),
        atol=1e-6,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"the encoder takes labels .* but the decoder does not"):
        plain = tfk.Sequential([tfk.layers.Dense(64, input_shape=(2,)),
                                tfpl.IndependentBernoulli((8, 8))])  # fmt: skip
        tfpvae.VAE(encoder, plain)


def test_refusals_say_what_to_do(data) -> None:
    x, y = data
    vae = _vae()
    needs = r"conditional \(num_classes=10\) and needs"
    with pytest.raises(ValueError, match=needs):
        vae.fit(x, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"must yield \(images, labels\)"):
        vae.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0)
    for call in (lambda: vae.sample(3), lambda: elbo(vae, x), lambda: vae.encode(x)):
        with pytest.raises(ValueError, match=needs):
            call()
    with pytest.raises(ValueError, match=r"class ids 0\.\.9 .num_classes=10.; got \[10"):
        vae.fit((x, y + 10), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one label per image: 128 images, 3 labels"):
        iwae_bound(vae, x, k=2, labels=y[:3])
    with pytest.raises(ValueError, match="one-hot rows"):
        vae.fit((x, np.full((128, C), 0.5)), epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids 0\.\.9"):
        bad = tf.data.Dataset.from_tensor_slices((x, y + 10)).batch(32)
        vae.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"wrap a generator in tf\.data"):
        vae.fit(iter([(x[:8], y[:8])]), epochs=1, verbose=0)
    plain = tfpvae.build_vae(likelihood="bernoulli", input_shape=(8, 8), hidden_units=(16,))
    for call in (
        lambda: plain.sample(2, labels=[0, 1]),
        lambda: held_out_metrics(plain, x, 2, labels=y),
    ):
        with pytest.raises(ValueError, match=r"not conditional.*num_classes=C"):
            call()
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        tfpvae.VAEConfig(num_classes=1)
    with pytest.raises(ValueError, match="prior='vamp' encodes pseudo-inputs without labels"):
        tfpvae.VAEConfig(num_classes=C, prior="vamp")


def test_plot_class_samples_draws_one_row_per_class() -> None:
    from tfpvae.evaluation import plots

    vae = _vae()
    fig = plots.plot_class_samples(vae, n_per_class=5)
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (C * 9 - 1, 5 * 9 - 1)  # 8×8 images, 1 pixel apart
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [str(c) for c in range(C)]
    with pytest.raises(ValueError, match="use plot_prior_samples"):
        plots.plot_class_samples(tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,)))


@pytest.mark.slow(seconds=20)
def test_cli_conditional_round_trip_on_digits(tmp_path, capsys) -> None:
    from tfpvae.interfaces.cli import main

    out = tmp_path / "run"
    argv = ["train", "--dataset", "digits", "--conditional", "--likelihood", "bernoulli",
            "--epochs", "1", "--limit", "200", "--hidden-units", "16", "--k", "5", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "config.json").read_text())["model"]["num_classes"] == C
    assert (out / "figures" / "class_samples.png").is_file()
    first = json.loads((out / "metrics.json").read_text())["iwae"]
    assert main(["evaluate", str(out), "--k", "5"]) == 0
    assert json.loads((out / "metrics.json").read_text())["iwae"] == pytest.approx(first)
    loaded = tfpvae.load(out)
    (x, y), _ = tfpvae.load_dataset("digits")
    bound = iwae_bound(loaded, prepare(x[:4], "bernoulli"), k=5, labels=y[:4])
    assert np.isfinite(bound).all()
    assert main(["export", str(out), str(tmp_path / "served")]) == 0
    served = tf.saved_model.load(str(tmp_path / "served"))
    assert "labels" in served.signatures["encode"].structured_input_signature[1]


def test_compare_variants_trains_and_bounds_a_conditional_variant_on_its_labels(data) -> None:
    from tfpvae.evaluation.variants import compare_variants

    x, y = data
    common = {"likelihood": "bernoulli", "hidden_units": (16,)}
    variants = {"elbo": {}, "conditional": {"num_classes": C}}
    result = compare_variants(variants, x[:96], x[96:], epochs=1, k=3, batch_size=32,
                              y_train=y[:96], y_test=y[96:], **common)  # fmt: skip
    assert [len(result.bounds[name]) for name in variants] == [32, 32]
    assert np.isfinite(result.bounds["conditional"]).all()
    with pytest.raises(ValueError, match="pass the class ids as y_train= and y_test="):
        compare_variants({"c": {"num_classes": C}}, x, x, epochs=1, **common)


@pytest.mark.parametrize(
    "fields",
    [
        {"architecture": "conv", "conv_filters": (4,)},
        {"posterior": "iaf", "num_flows": 1, "flow_hidden_units": (8,)},
        {"posterior": "planar", "num_flows": 2},
        {"posterior": "relaxed_categorical", "categorical_dims": 2, "categories": 3},
        {"prior": "mixture", "prior_components": 3},
        {"objective": "iwae", "iwae_k": 3},
        {"latent_dim": (2, 2), "top_hidden_units": (8,)},
    ],
    ids=["conv", "iaf", "planar", "relaxed_categorical", "mixture_prior", "iwae", "two_layers"],
)
def test_every_family_member_takes_labels(fields, data) -> None:
    x, y = data[0][:32], data[1][:32]
    vae = _vae(**fields)
    before = vae.test_on_batch(x, y, return_dict=True)["loss"]
    vae.train_on_batch(x, y)
    after = vae.test_on_batch(x, y, return_dict=True)["loss"]
    assert np.isfinite(before) and np.isfinite(after)
    assert vae.sample(3, seed=0, labels=[0, 1, 2]).shape == (3, 8, 8)
    right, wrong = (iwae_bound(vae, x, k=2, labels=labels) for labels in (y, (y + 1) % C))
    assert np.isfinite(right).all() and not np.allclose(right, wrong)


def test_conditional_flag_and_config_key_set_the_dataset_classes(tmp_path) -> None:
    from tfpvae.interfaces.cli import build_parser, resolve_train_options

    args = build_parser().parse_args(["train", "--conditional", "--out", str(tmp_path / "a")])
    assert resolve_train_options(args)[0].num_classes == C
    config = tmp_path / "run.toml"
    config.write_text('dataset = "fashion_mnist"\nconditional = true\n')
    args = build_parser().parse_args(["train", "--config", str(config), "--out", "o"])
    model, settings = resolve_train_options(args)
    assert (model.num_classes, model.input_shape, settings.dataset) == (
        C,
        (28, 28),
        "fashion_mnist",
    )
    args = build_parser().parse_args(["train", "--config", str(config), "--no-conditional",
                                      "--out", "o"])  # fmt: skip
    assert resolve_train_options(args)[0].num_classes is None


def test_labels_follow_their_images_through_the_array_pipeline() -> None:
    from tfpvae.training.pipeline import array_dataset

    levels = (np.arange(6)[:, None, None] * 40 + np.zeros((6, 2, 2))).astype("uint8")
    stream = array_dataset(levels, 4, seed=1, first_epoch=0, dequantize=True, labels=np.arange(6))
    for images, labels in stream.take(3):  # shuffled, dequantised, labels beside their images
        np.testing.assert_array_equal(np.floor(images.numpy()[:, 0, 0] * 256 / 40), labels)
