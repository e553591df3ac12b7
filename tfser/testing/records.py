"""One serialised record -> tensors: the per-record reference of ``tfser.data.pipeline``'s parser.

The pipeline parses blocks of records at once (``tf.io.parse_example``); tests compare it, and the
writer's output, against this straightforward per-record parse.
"""

from typing import Dict

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

from tfser.data.schema import GT_BINS, GT_SEEDS, SCHEMA_VERSION, feature_spec


def parse_example(serialized: tf.Tensor, feature_dims: Dict[str, int],
                  with_ground_truth: bool = True) -> Dict[str, tf.Tensor]:
  """Parses one serialised record into a dict of tensors (graph-safe, for ``Dataset.map``).

  Scalars come back with shape ``[]``; ratings as ragged ``[None]`` vectors; ``gt_4x4`` as
  ``[GT_SEEDS, 16]`` and ``gt_2x2`` as ``[GT_SEEDS, 4]``. A record written with another
  schema version fails with an InvalidArgumentError that names both versions.
  """
  parsed = tf.io.parse_single_example(serialized, feature_spec(feature_dims, with_ground_truth))
  version = parsed.pop("schema_version")[0]
  tf.debugging.assert_equal(
      version, tf.constant(SCHEMA_VERSION, tf.int64),
      message=f"TFRecord schema version differs from this tfser's ({SCHEMA_VERSION}); "
              "re-run data_prep.prepare")
  out = dict(parsed)
  for k in ("label_index", "activation", "valence", "dominance"):
    out[k] = parsed[k][0]
  if with_ground_truth:
    for bins in GT_BINS:
      key = f"gt_{bins}x{bins}"
      out[key] = tf.reshape(parsed[key], [GT_SEEDS, bins * bins])
  return out
