"""TensorBoard: Keras's callback in ``vae.fit``, the pictures, and ``train --tensorboard``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tfpvae
from tfpvae._backend import tf, tfk
from tfpvae.interfaces.cli import main
from tfpvae.training.tensorboard import TensorBoardImages


def _tags(directory: Path) -> dict[str, list[int]]:
    """Every tag in the event files of ``directory`` → the steps it was written at."""
    tags: dict[str, list[int]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def _image_sizes(directory: Path, tag: str) -> list[tuple[int, int, int]]:
    """(images, width, height) of each ``tf.summary.image`` entry under ``tag``."""
    sizes = []
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    width, height, *pngs = value.tensor.string_val
                    sizes.append((len(pngs), int(width), int(height)))
    return sizes


@pytest.mark.slow(seconds=3)
def test_keras_tensorboard_and_pictures_in_fit(tmp_path) -> None:
    vae = tfpvae.build_vae(input_shape=(8, 8), hidden_units=(16,))
    x = np.random.default_rng(0).uniform(0.1, 0.9, (16, 8, 8)).astype("float32")
    callbacks = [
        tfk.callbacks.TensorBoard(str(tmp_path)),
        TensorBoardImages(tmp_path, x[:3], every=2, n_samples=5),
    ]
    history = vae.fit(
        x, epochs=3, batch_size=8, validation_data=(x[:4], x[:4]), callbacks=callbacks, verbose=0
    )
    train, validation = _tags(tmp_path / "train"), _tags(tmp_path / "validation")
    for tags in (train, validation):
        for name in ("epoch_loss", "epoch_rate", "epoch_distortion"):
            assert tags[name] == [0, 1, 2]
    written = [
        float(tf.make_ndarray(v.tensor))
        for path in (tmp_path / "train").glob("events*")
        for e in tf.compat.v1.train.summary_iterator(str(path))
        for v in e.summary.value
        if v.tag == "epoch_loss"
    ]
    np.testing.assert_allclose(written, history.history["loss"], rtol=1e-6)
    images = _tags(tmp_path / "images")
    assert images == {"reconstructions": [1, 2], "prior_samples": [1, 2]}  # every 2nd + last
    assert _image_sizes(tmp_path / "images", "reconstructions") == [(3, 16, 8)] * 2  # pairs
    assert _image_sizes(tmp_path / "images", "prior_samples") == [(5, 8, 8)] * 2


@pytest.mark.slow(seconds=4)
def test_train_tensorboard_flag_writes_scalars_and_pictures(tmp_path) -> None:
    out = tmp_path / "run"
    argv = ["train", "--limit", "40", "--epochs", "2", "--batch-size", "20", "--hidden-units",
            "8", "--k", "2", "--no-figures", "--quiet", "--out", str(out)]  # fmt: skip
    assert main([*argv, "--tensorboard", "--tensorboard-images-every", "5"]) == 0
    logs = out / "tensorboard"
    assert json.loads((out / "config.json").read_text())["train"]["tensorboard"] == str(logs)
    for split in ("train", "validation"):
        tags = _tags(logs / split)
        assert {"epoch_loss", "epoch_rate", "epoch_distortion"} <= set(tags)
    assert _tags(logs / "images") == {"reconstructions": [1], "prior_samples": [1]}  # last epoch
