"""The ``--distribute`` choices, free of TensorFlow (the task configs validate with them;
``tfser.core.distribute`` builds the strategies)."""

# none: the default strategy; mirrored: every local GPU, else every logical CPU device;
# multi_worker: MultiWorkerMirroredStrategy over the TF_CONFIG cluster.
STRATEGIES = ("none", "mirrored", "multi_worker")
