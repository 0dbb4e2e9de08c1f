"""Distribution strategies by name, and who writes files in a multi-worker run.

tfpvae trains on TensorFlow's own engine, ``tf.distribute``: the model is built
and compiled in ``strategy.scope()``, Keras splits every global batch across
replicas, and the training step scales each replica's loss by its share of the
global batch so that the summed gradients are those of the per-example −ELBO
(see :meth:`tfpvae.VAE.compute_gradients`).

* ``default``: one device, the strategy TensorFlow has without a scope.
* ``mirrored``: every local GPU (or the CPU) as a replica, all-reduced in process.
* ``multiworker``: ``MultiWorkerMirroredStrategy`` across the processes named in
  the ``TF_CONFIG`` environment variable; it must be created before TensorFlow
  runs any op in the process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tfpvae._backend import tf
from tfpvae.registry import Registry

#: Strategy registry: name → factory.
STRATEGIES: Registry[Callable[[], tf.distribute.Strategy]] = Registry("strategy")
STRATEGIES.register("default", tf.distribute.get_strategy)
STRATEGIES.register("mirrored", tf.distribute.MirroredStrategy)
STRATEGIES.register("multiworker", tf.distribute.MultiWorkerMirroredStrategy)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy registered as ``name`` (``ValueError`` listing the names if unknown)."""
    return STRATEGIES.get(name)()


def worker_role(strategy: tf.distribute.Strategy) -> tuple[bool, int]:
    """(is_chief, task index) of this process; a single process is the chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)
    return chief, task_id


def worker_directory(out: Path, strategy: tf.distribute.Strategy) -> Path:
    """Where this process writes: ``out`` for the chief, ``out/worker-N`` for the others.

    Every worker keeps its own checkpoints (a resumed multi-worker run restores
    them on every worker), so that workers sharing a file system never write
    the same file.
    """
    chief, index = worker_role(strategy)
    return out if chief else out / f"worker-{index}"


def is_worker_directory(path: Path) -> bool:
    """Whether ``path`` is a non-chief worker's folder (``worker-N``) inside a run."""
    return path.is_dir() and re.fullmatch(r"worker-\d+", path.name) is not None
