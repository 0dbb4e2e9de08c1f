"""SavedModel export: serving signatures, reloading, and the formats VAE.save refuses."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

import tfpvae
from tfpvae._backend import tf, tfd, tfk
from tfpvae.interfaces.cli import main
from tfpvae.models.serving import SIGNATURES, serving_functions

SAVED_MODEL_CLI = "tensorflow.python.tools.saved_model_cli"

# Runs in a fresh interpreter that imports TensorFlow only.
SERVE = """
import sys
import numpy as np
import tensorflow as tf

model = tf.saved_model.load(sys.argv[1])
inputs = np.load(sys.argv[2])
sig = model.signatures
out = {"signatures": np.array(sorted(sig))}
for key, value in sig["encode"](images=tf.constant(inputs["x"])).items():
    out["encode_" + key] = value.numpy()
out["decode_mean"] = sig["decode"](z=tf.constant(inputs["z"]))["mean"].numpy()
for name, seed in (("sample", [3, 4]), ("sample_again", [3, 4]), ("sample_other", [5, 6])):
    drawn = sig["sample"](n=tf.constant(6), seed=tf.constant(seed))
    out[name + "_images"], out[name + "_z"] = drawn["images"].numpy(), drawn["z"].numpy()
terms = sig["elbo"](images=tf.constant(inputs["x"]), seed=tf.constant([7, 0]))
out.update({"elbo_" + key: value.numpy() for key, value in terms.items()})
loaded = [m for m in ("tfpvae", "tf_keras", "tensorflow_probability") if m in sys.modules]
out["loaded"] = np.array(loaded, dtype=str)
np.savez(sys.argv[3], **out)
"""


def _images(n: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.95, (n, 8, 8)).astype("float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A VAE with optimizer state, and the SavedModel that ``vae.save`` wrote of it."""
    tfk.utils.set_random_seed(5)
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=3)
    for variable in vae.optimizer.variables:  # as if trained: iterations and Adam's moments
        variable.assign(tf.fill(variable.shape, tf.cast(0.5, variable.dtype)) + 1)
    path = tmp_path_factory.mktemp("export") / "saved"
    vae.save(path)
    inputs = {"x": _images(), "z": np.random.default_rng(2).normal(size=(4, 3)).astype("float32")}
    return vae, path, inputs


def _check_encode_and_decode(vae, inputs, served) -> None:
    q = vae.encoder(inputs["x"])
    np.testing.assert_allclose(served["encode_mean"], q.mean().numpy(), atol=1e-5)
    np.testing.assert_allclose(served["encode_stddev"], q.stddev().numpy(), atol=1e-5)
    np.testing.assert_allclose(served["encode_scale_tril"], q.scale.to_dense().numpy(), atol=1e-5)
    decoded = vae.decoder(inputs["z"]).mean().numpy()
    np.testing.assert_allclose(served["decode_mean"], decoded, atol=1e-5)


def _check_elbo(vae, inputs, served) -> None:
    """The served ELBO at seed [7, 0] is tfpvae.elbo's at seed 7: the same draws."""
    terms = tfpvae.elbo(vae, inputs["x"], n_samples=1, seed=7)
    np.testing.assert_allclose(served["elbo_rate"], terms.rate, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(served["elbo_distortion"], terms.distortion, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(served["elbo_elbo"], terms.elbo, rtol=1e-5, atol=1e-4)
    assert served["elbo_elbo"].shape == (5,) and np.all(served["elbo_rate"] > 0)


def _check_sample(vae, served) -> None:
    images, z = served["sample_images"], served["sample_z"]
    assert images.shape == (6, 8, 8) and z.shape == (6, 3)
    assert np.all((images > 0) & (images < 1))  # Beta means lie inside (0, 1)
    np.testing.assert_array_equal(images, served["sample_again_images"])  # seeded
    assert not np.allclose(images, served["sample_other_images"])
    expected_z = vae.prior.sample(6, seed=tf.constant([3, 4])).numpy()
    np.testing.assert_allclose(z, expected_z, atol=1e-6)
    np.testing.assert_allclose(images, vae.decode(z).numpy(), atol=1e-5)


@pytest.mark.slow(seconds=8)
def test_saved_model_is_served_by_tensorflow_alone(exported, tmp_path) -> None:
    vae, path, inputs = exported
    np.savez(tmp_path / "inputs.npz", **inputs)
    subprocess.run(
        [sys.executable, "-c", SERVE, str(path), str(tmp_path / "inputs.npz"), str(tmp_path / "o")],
        check=True,
        timeout=120,
    )
    served = dict(np.load(tmp_path / "o.npz"))
    assert sorted(served["signatures"]) == sorted([*SIGNATURES, "serving_default"])
    assert list(served["loaded"]) == []  # neither tfpvae, tf_keras nor TFP was imported
    _check_encode_and_decode(vae, inputs, served)
    _check_elbo(vae, inputs, served)
    _check_sample(vae, served)


@pytest.mark.slow(seconds=5)
def test_load_model_gives_back_a_working_vae(exported, tmp_path) -> None:
    vae, path, inputs = exported
    again = tfk.models.load_model(path)
    assert isinstance(again, tfpvae.VAE) and again.config == vae.config
    for mine, theirs in zip(vae.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert int(again.optimizer.iterations) == 1
    for mine, theirs in zip(vae.optimizer.variables, again.optimizer.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(again.encode(inputs["x"]), vae.encode(inputs["x"]))
    terms = [tfpvae.elbo(m, inputs["x"], seed=3).elbo for m in (vae, again)]
    np.testing.assert_array_equal(*terms)
    # Compiled, with its optimizer; and ModelCheckpoint writes the whole model through save.
    checkpoint = tfk.callbacks.ModelCheckpoint(str(tmp_path / "checkpoint"))
    history = again.fit(inputs["x"], epochs=1, verbose=0, callbacks=[checkpoint])
    assert np.isfinite(history.history["loss"][0]) and int(again.optimizer.iterations) == 2
    restored = tfk.models.load_model(tmp_path / "checkpoint")
    for mine, theirs in zip(again.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_serving_functions_of_a_diagonal_bernoulli_conv_model() -> None:
    vae = tfpvae.build_vae(
        likelihood="bernoulli", posterior="diag", architecture="conv", input_shape=(8, 8),
        hidden_units=(8,), conv_filters=(4,), latent_dim=2,
    )  # fmt: skip
    x = (_images() > 0.5).astype("float32")
    functions = serving_functions(vae)
    q = vae.encoder(x)
    encoded = functions["encode"](tf.constant(x))
    np.testing.assert_allclose(encoded["stddev"], q.stddev(), atol=1e-6)
    np.testing.assert_allclose(encoded["scale_tril"], tf.linalg.diag(q.stddev()), atol=1e-6)
    terms = functions["elbo"](tf.constant(x), tf.constant([9, 0]))
    expected = tfpvae.elbo(vae, x, seed=9)
    np.testing.assert_allclose(terms["elbo"], expected.elbo, rtol=1e-5)
    images = functions["sample"](tf.constant(4), tf.constant([1, 1]))["images"].numpy()
    assert images.shape == (4, 8, 8) and np.all((images >= 0) & (images <= 1))


def test_single_file_formats_and_tf_saved_model_save_are_refused(exported, tmp_path) -> None:
    vae = exported[0]
    for name in ("model.h5", "model.keras"):
        with pytest.raises(ValueError, match=r"tfpvae\.save\(vae, directory\)"):
            vae.save(tmp_path / name)
    with pytest.raises(ValueError, match="format h5"):
        vae.save(tmp_path / "dir", save_format="h5")
    with pytest.raises(TypeError, match=r"use vae\.save\(directory\)"):
        tf.saved_model.save(vae, str(tmp_path / "direct"))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["direct"])
    vae.save_weights(tmp_path / "weights.h5")  # still the way to a single file


def test_clone_model_rebuilds_with_fresh_weights_and_summary_prints(exported) -> None:
    vae = exported[0]
    clone = tfk.models.clone_model(vae)
    assert isinstance(clone, tfpvae.VAE) and clone.config == vae.config
    assert clone.get_config() == vae.get_config()
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in vae.get_weights()]
    assert not np.allclose(clone.encoder.get_weights()[0], vae.encoder.get_weights()[0])
    clone.set_weights(vae.get_weights())
    outputs = []
    for model in (vae, clone):  # the same draw of z for both
        tf.random.set_seed(11)
        outputs.append(model(_images()).mean().numpy())
    np.testing.assert_array_equal(*outputs)
    lines: list[str] = []
    clone.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "encoder (Functional)" in text and "decoder (Functional)" in text
    assert f"Total params: {vae.count_params()}" in text


def test_custom_prior_needs_to_be_given_to_from_config() -> None:
    prior = tfd.MultivariateNormalDiag(loc=[1.0, -1.0], scale_diag=[2.0, 2.0], name="prior")
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), prior=prior)
    assert vae.get_config()["custom_prior"] is True
    with pytest.raises(ValueError, match="custom_objects=\\{'prior': prior\\}"):
        tfk.models.clone_model(vae)
    with tfk.utils.custom_object_scope({"prior": prior}):  # as load_model's custom_objects
        assert tfk.models.clone_model(vae).prior is prior


def test_cli_export_writes_a_saved_model_and_keeps_what_is_there(exported, tmp_path, capsys):
    vae = exported[0]
    run, out = tfpvae.save(vae, tmp_path / "run"), tmp_path / "served"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(run), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfpvae export: error:") and "--force" in err and "\n" not in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main(["export", str(run), str(out), "--force"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    served = tf.saved_model.load(str(out))
    assert sorted(served.signatures) == sorted([*SIGNATURES, "serving_default"])
    z = tf.constant([[0.5, -1.0, 2.0]])
    np.testing.assert_allclose(served.signatures["decode"](z=z)["mean"], vae.decode(z), atol=1e-6)
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
    assert "directory does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "served"]  # no staging left


@pytest.mark.slow(seconds=4)
@pytest.mark.parametrize(
    "fields",
    [
        dict(posterior="iaf", num_flows=1, flow_hidden_units=(4,)),
        dict(posterior="relaxed_categorical", categorical_dims=2, categories=3),
        dict(prior="mixture", prior_components=3),
    ],
    ids=["iaf", "relaxed_categorical", "mixture_prior"],
)
def test_the_new_families_export_too(fields, tmp_path) -> None:
    """A flow, a discrete latent and a learned prior serve codes and the per-image bound."""
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), **fields)
    x = _images()
    vae.save(tmp_path / "served")
    served = tf.saved_model.load(str(tmp_path / "served"))
    codes = served.signatures["encode"](images=tf.constant(x))
    q = vae.encoder(x)
    np.testing.assert_allclose(codes["mean"], vae.encode(x), atol=1e-5)
    assert ("stddev" in codes) == (fields.get("posterior") != "iaf")  # a flow has no scale
    terms = served.signatures["elbo"](images=tf.constant(x), seed=tf.constant([3, 0]))
    assert terms["elbo"].shape == (len(x),) and np.all(np.isfinite(terms["elbo"]))
    assert q.batch_shape == (len(x),)


def _doc_commands() -> list[str]:
    """The console lines of docs/keras.md that prepare images and run ``saved_model_cli``."""
    text = (REPO / "docs" / "keras.md").read_text()
    return [
        line[2:]
        for line in text.splitlines()
        if line.startswith(("$ saved_model_cli run", "$ python -c"))
    ]


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    script = Path(sys.executable).with_name("saved_model_cli")
    tool = [str(script)] if script.is_file() else [sys.executable, "-m", SAVED_MODEL_CLI]
    return [*tool, *argv[1:]]


@pytest.mark.slow(seconds=20)
def test_the_documented_saved_model_cli_commands_run(exported, tmp_path, monkeypatch) -> None:
    _, path, _ = exported
    (tmp_path / "runs").mkdir()
    shutil.copytree(path, tmp_path / "runs" / "x-served")
    prepare, *commands = _doc_commands()
    assert [c.split()[7] for c in commands] == ["serving_default", "sample", "elbo"]
    monkeypatch.chdir(tmp_path)  # the docs' Python line, run here (tfpvae is imported already)
    exec(shlex.split(prepare)[2], {})
    assert np.load(tmp_path / "runs" / "x.npy").shape == (2, 8, 8)
    outputs = []
    for command in commands:
        result = subprocess.run(
            _argv(command), cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
        outputs.append(result.stdout)
    assert "Result for output key mean" in outputs[0] and "scale_tril" in outputs[0]
    assert "Result for output key images" in outputs[1] and "output key z" in outputs[1]
    assert "Result for output key elbo" in outputs[2]


BAD_REQUESTS = [
    (
        "encode",
        {"images": np.full((2, 64), 0.5, "float32")},
        r"\[batch, 8, 8\].*got shape\] \[2 64\]",
    ),
    ("serving_default", {"images": np.full((2, 8, 8, 1), 0.5, "float32")}, "got shape"),
    (
        "elbo",
        {"images": np.full((2, 8, 8), 255.0, "float32"), "seed": np.array([0, 0], "int32")},
        r"in \(0, 1\), prepared with tfpvae.prepare\(\.\.\., likelihood=\\?'beta\\?'\); got values",
    ),
    ("encode", {"images": np.full((2, 8, 8), np.nan, "float32")}, "got values from"),
    ("decode", {"z": np.zeros((2, 5), "float32")}, r"z must be float32 \[batch, 3\]"),
    ("sample", {"n": np.int32(0), "seed": np.array([0, 0], "int32")}, "n must be a positive"),
    ("sample", {"n": np.int32(2), "seed": np.array([0], "int32")}, r"seed must be int32 \[2\]"),
]


def test_the_served_signatures_refuse_bad_requests_saying_what_they_expect(exported) -> None:
    vae, path, inputs = exported
    served = tf.saved_model.load(str(path)).signatures
    assert set(served) == {*SIGNATURES, "serving_default"}
    default = served["serving_default"](images=tf.constant(inputs["x"]))
    np.testing.assert_allclose(default["mean"], vae.encoder(inputs["x"]).mean(), atol=1e-5)
    for name, request, expected in BAD_REQUESTS:
        with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
            served[name](**{key: tf.constant(value) for key, value in request.items()})


@pytest.mark.parametrize(
    ("likelihood", "good", "bad", "expected"),
    [
        ("discretized_logistic", 17.0, 17.5, "the integers 0, 1, ..., 255"),
        ("bernoulli", 1.0, 2.0, r"\{0, 1\}"),
        ("gaussian", -3.0, np.inf, "finite real values"),
    ],
)
def test_each_likelihood_checks_its_own_support(likelihood, good, bad, expected) -> None:
    vae = tfpvae.build_vae(likelihood, input_shape=(2, 2), hidden_units=(4,))
    encode = serving_functions(vae)["encode"]
    assert encode(tf.fill([1, 2, 2], good))["mean"].shape == (1, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        encode(tf.fill([1, 2, 2], bad))


def test_a_conditional_model_checks_its_labels_too() -> None:
    vae = tfpvae.build_vae(input_shape=(2, 2), hidden_units=(4,), num_classes=3)
    functions = serving_functions(vae)
    images = tf.fill([2, 2, 2], 0.5)
    assert functions["encode"](images, tf.constant([0, 2]))["mean"].shape == (2, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in 0\.\.2.*got ids"):
        functions["encode"](images, tf.constant([0, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="one per image; got shape"):
        functions["elbo"](images, tf.constant([0, 0]), tf.constant([1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample: labels must be"):
        functions["sample"](tf.constant([-1]), tf.constant([0, 0]))
