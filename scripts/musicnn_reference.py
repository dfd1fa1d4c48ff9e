"""Reference outputs of the original TensorFlow musicnn (MSD) for the parity test of models/musicnn.py.

Run once, by hand, in a throwaway virtual environment that has TensorFlow (never in the project's):

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras numpy
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    .venv/bin/python scripts/musicnn_reference.py inputs tests/fixtures/musicnn_inputs.npz
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python scripts/musicnn_reference.py outputs \\
        tests/fixtures/musicnn_inputs.npz \\
        tests/fixtures/musicnn_reference.npz

``inputs`` (project environment) writes log-mel windows of a few generated clips; ``outputs`` (TensorFlow
environment) feeds exactly those windows to musicnn's own graph and checkpoint and stores tags and features.
"""

from __future__ import annotations

import sys
from pathlib import Path


def inputs(out: Path) -> None:
    import numpy as np

    from models.musicnn import log_mel, windows
    from training.corpus.generate import synth_clip

    batches = []
    for index, seconds in ((0, 4), (1, 4), (2, 7), (3, 2)):  # the last one is shorter than a window
        _, y = synth_clip(index, seed=2024, seconds=seconds)
        batches.append(windows(log_mel(y)))
    x = np.concatenate(batches)
    np.savez_compressed(out, x=x.astype(np.float16))
    print(f"wrote {x.shape[0]} windows to {out}")


def outputs(source: Path, out: Path) -> None:
    import os

    import musicnn
    import numpy as np
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    x = np.load(source)["x"].astype(np.float32)
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        placeholder = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        training = tf.compat.v1.placeholder(tf.bool)
        logits, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(
            placeholder, training, "MSD_musicnn", 50)
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, os.path.dirname(musicnn.__file__) + "/MSD_musicnn/")
    values = session.run([tf.nn.sigmoid(logits), penultimate, mean_pool, max_pool],
                         feed_dict={placeholder: x, training: False})
    np.savez_compressed(out, tags=values[0], penultimate=values[1], mean_pool=values[2], max_pool=values[3])
    print(f"wrote reference outputs for {x.shape[0]} windows to {out} (TensorFlow {tf.__version__})")


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        inputs(Path(sys.argv[2]))
    else:
        outputs(Path(sys.argv[2]), Path(sys.argv[3]))
