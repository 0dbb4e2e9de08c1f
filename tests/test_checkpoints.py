"""Per-epoch checkpoints: complete round trips, atomic replacement, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import tfpvae
from tfpvae.io.saving import ModelFileError
from tfpvae.training.checkpoints import Checkpoints

X = np.random.default_rng(0).uniform(0.05, 0.95, (64, 8, 8)).astype("float32")


def _vae(**kwargs) -> tfpvae.VAE:
    return tfpvae.build_vae(input_shape=(8, 8), hidden_units=(8,), **kwargs)


def _state(vae: tfpvae.VAE) -> list[np.ndarray]:
    return [v.numpy() for v in (*vae.trainable_variables, *vae.optimizer.variables)] + [
        vae.noise.state.numpy()
    ]


def test_round_trip_restores_weights_optimizer_and_noise(tmp_path) -> None:
    vae = _vae()
    vae.fit(X, epochs=2, batch_size=16, verbose=0)
    Checkpoints(vae, tmp_path).write(2)
    fresh = _vae()
    assert Checkpoints(fresh, tmp_path).restore() == 2
    for a, b in zip(_state(vae), _state(fresh), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations.numpy()) == 8


def test_newer_checkpoint_replaces_older_and_leftovers_are_cleared(tmp_path) -> None:
    vae = _vae()
    checkpoints = Checkpoints(vae, tmp_path)
    checkpoints.write(1)
    (tmp_path / ".tmp-killed").mkdir()  # as left by a kill during a write
    (tmp_path / "epoch-0002").mkdir()  # written, but the pointer was never moved
    checkpoints.write(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002", "latest.json"]
    assert Checkpoints(_vae(), tmp_path).restore() == 2


def test_no_checkpoint_restores_nothing(tmp_path) -> None:
    assert Checkpoints(_vae(), tmp_path / "none").restore() == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "latest.json").write_text("{not json"), "not a valid checkpoint pointer"),
        (lambda d: (d / "latest.json").write_text('{"epoch": 1}'), "not a valid checkpoint"),
        (
            lambda d: [p.write_bytes(b"\0" * 10) for p in (d / "epoch-0001").iterdir()],
            "cannot restore the checkpoint",
        ),
    ],
)
def test_damaged_checkpoints_give_clear_errors(tmp_path, damage, message) -> None:
    Checkpoints(_vae(), tmp_path).write(1)
    damage(tmp_path)
    with pytest.raises(ModelFileError, match=message):
        Checkpoints(_vae(), tmp_path).restore()


def test_checkpoint_of_another_model_shape_is_refused(tmp_path) -> None:
    Checkpoints(_vae(), tmp_path).write(1)
    with pytest.raises(ModelFileError, match="different model"):
        Checkpoints(_vae(latent_dim=3), tmp_path).restore()
