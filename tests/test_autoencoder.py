from __future__ import annotations

import numpy as np
from conftest import numpy_mlp

import tfpvae
from tfpvae.models.autoencoder import build_autoencoder


def test_autoencoder_trains_and_shares_the_vae_api(digits_beta) -> None:
    x_train, x_test = digits_beta
    ae = build_autoencoder(input_shape=(8, 8), hidden_units=(32,))
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(32,))
    before = ae.evaluate(x_test, x_test, verbose=0)
    ae.fit(x_train, x_train, epochs=3, batch_size=32, verbose=0)
    assert ae.evaluate(x_test, x_test, verbose=0) < before - 3.0
    z = np.zeros((3, 2), "float32")
    for model in (ae, vae):
        assert model.encode(x_test[:3]).shape == (3, 2)
        images = np.asarray(model.decode(z))
        assert images.shape == (3, 8, 8) and images.min() >= 0 and images.max() <= 1
    # Its code is the trained encoder's deterministic map, computed here in NumPy from
    # the Dense weights alone: no sampling, no posterior, the layers in order.
    x = x_test[:5].astype(np.float64)
    np.testing.assert_allclose(ae.encode(x_test[:5]), numpy_mlp(ae.encoder, x), atol=1e-4)
    # ... and so is its decoder, a sigmoid of the mirrored trunk's logits.
    codes = np.asarray(ae.encode(x_test[:5]), np.float64)
    expected = 1.0 / (1.0 + np.exp(-numpy_mlp(ae.decoder, codes)))
    np.testing.assert_allclose(ae.decode(codes), expected.reshape(5, 8, 8), atol=1e-5)
