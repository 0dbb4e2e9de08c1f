from __future__ import annotations

import json

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfd
from tfpvae.io.saving import CONFIG_FILE, WEIGHTS_FILE, ModelFileError, load, save


@pytest.mark.slow(seconds=3)
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(likelihood="bernoulli", architecture="conv", kl="regularizer", posterior="diag")],
)
def test_round_trip_gives_identical_outputs(tmp_path, kwargs) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), latent_dim=3, **kwargs)
    x = np.random.default_rng(0).uniform(0.1, 0.9, (5, 8, 8)).astype("float32")
    vae.fit(x, x, epochs=1, verbose=0)
    save(vae, tmp_path)
    again = load(tmp_path)
    assert again.config == vae.config
    for model in (vae, again):
        tf.random.set_seed(42)
        model.result = model(x).mean().numpy()
    np.testing.assert_array_equal(vae.result, again.result)
    np.testing.assert_array_equal(vae.encode(x).numpy(), again.encode(x).numpy())


def _saved(tmp_path):
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    save(vae, tmp_path)
    return tmp_path


def test_missing_directory_and_files(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="directory does not exist"):
        load(tmp_path / "nope")
    with pytest.raises(ModelFileError, match=f"{CONFIG_FILE} is missing"):
        load(tmp_path)
    (_saved(tmp_path) / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelFileError, match=f"{WEIGHTS_FILE} is missing"):
        load(tmp_path)


def test_corrupted_config(tmp_path) -> None:
    (_saved(tmp_path) / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelFileError, match="not a valid tfpvae config"):
        load(tmp_path)


def test_truncated_weights(tmp_path) -> None:
    weights = _saved(tmp_path) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="corrupted file, or weights from a different"):
        load(tmp_path)


def test_config_from_a_different_model_shape(tmp_path) -> None:
    path = _saved(tmp_path) / CONFIG_FILE
    payload = json.loads(path.read_text())
    payload["model"]["latent_dim"] = 4
    path.write_text(json.dumps(payload))
    with pytest.raises(ModelFileError, match="Shape mismatch"):
        load(tmp_path)


def test_custom_prior_must_be_passed_back(tmp_path) -> None:
    prior = tfd.MultivariateNormalDiag(loc=tf.zeros(2), scale_diag=[2.0, 2.0], name="wide")
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), prior=prior)
    save(vae, tmp_path)
    with pytest.raises(ModelFileError, match="custom prior"):
        load(tmp_path)
    assert load(tmp_path, prior=prior).prior is prior


def test_save_leaves_no_temporary_files(tmp_path) -> None:
    _saved(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]


def test_a_custom_prior_named_prior_is_still_custom(tmp_path) -> None:
    prior = tfd.MultivariateNormalDiag(loc=[1.0, -1.0], name="prior")  # the default's name
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), prior=prior)
    save(vae, tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["custom_prior"] is True
    with pytest.raises(ModelFileError, match="custom prior"):
        load(tmp_path)
    assert load(tmp_path, prior=prior).prior is prior


def test_a_model_saved_before_the_exp_map_loads_with_its_softplus(tmp_path) -> None:
    """A config.json from before ``concentration`` existed meant the softplus map."""
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,), concentration="softplus")
    save(vae, tmp_path)
    path = tmp_path / CONFIG_FILE
    payload = json.loads(path.read_text())
    del payload["model"]["concentration"]
    path.write_text(json.dumps(payload))
    again = load(tmp_path)
    assert again.config.concentration == "softplus"
    x = np.random.default_rng(1).uniform(0.1, 0.9, (4, 8, 8)).astype("float32")
    z = vae.encode(x)
    expected = vae.decoder(z).log_prob(x).numpy()
    np.testing.assert_allclose(again.decoder(z).log_prob(x).numpy(), expected, rtol=1e-6)
    exp_model = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    assert exp_model.config.concentration == "exp"
    exp_model.set_weights(vae.get_weights())  # same numbers, today's map: another density
    assert np.abs(exp_model.decoder(z).log_prob(x).numpy() - expected).min() > 1.0
