"""Zhang et al.'s upsampling of an utterance's ratings into a cloud of points for the KDE.

The annotators paper (section 2, footnote 1), after Zhang, Essl and Mower Provost (ICMI 2017):
for every utterance draw random subsets of its annotators, take each subset's mean (activation,
valence), add noise U(-std/2, std/2) per dimension where std is the standard deviation of that
utterance's ratings (plus 1e-12 so a zero std is harmless), and clamp to the rating limits.
tfser uses it twice: on the ratings to build the ground-truth distributions (data_prep, float64,
512 grid) and on the model's per-annotator predictions inside the DiffKDE layer (training).

How a random non-empty subset is drawn (neither paper spells it out; this is what the annotators
paper's own code, ``get_random_observations_fast``, does): the subset size k is uniform on
{1, ..., n} for n valid raters, then a uniformly random subset of that size (the first k of a
random permutation). So P(size = k) = 1/n, unlike "each rater with probability 1/2", which piles
subsets up around size n/2 and would shrink the spread of the means. Subset means therefore range
from single ratings (k = 1) to the utterance mean (k = n).

The std is the population std (ddof=0) by default; ``std_ddof=1`` gives the Bessel-corrected
sample std that the authors' PyTorch code (``torch.std``) uses, and that the ground truth uses by
default (``data_prep.ground_truth.GroundTruthConfig.std_ddof``, ``prepare --gt_std_ddof``). With ddof=1 a one-rater row has
no sample std; tfser then uses 0 (the authors' code produced NaN there).

Degenerate rows: one valid rater -> std 0, every point is that rating (clamped). No valid rater
-> every point is the centre of the limits ((lo + hi) / 2, i.e. 0 for [-1, 1]): finite and
defined; callers that must ignore such rows mask them (the DiffKDE layer masks them out of the
KDE; ``row_has_ratings`` below says which rows they are).

Randomness is stateless and counter-based: a seed tensor [2] is hashed into keys and every uniform
is a hash of (key, element index). Per-row seeds [batch, 2] give each row its own keys and its own
element index (from 0 over that row's elements), so a row's points are those of a batch-1 call with
its seed: a batch of utterances upsampled at once (the ground truth) gives every utterance the
points it would get alone. ``tf.random.stateless_uniform`` was the first choice, but its CPU kernel
and its XLA lowering draw different numbers for the same seed (TF 2.17, measured), so the ground
truth or a training step would depend on whether XLA was on. The hash (Wellons' "lowbias32" integer
finaliser, applied twice with two keys) is plain uint32 arithmetic, so a seed gives bit-identical
points eagerly, in tf.function and under XLA, and the same subsets and noise in every float dtype
(the uniforms are made in float32 and cast). 24-bit uniforms are ample for subset choice and
noise.
"""

from typing import Optional, Sequence, Tuple, Union

import tfser  # noqa: F401  (Keras flavour before TensorFlow)
import tensorflow as tf

# Footnote 1 of the annotators paper: added to the noise half-width so that std = 0 is harmless.
STD_EPSILON = 1e-12

# Rater indices live below the random bits of a subset key (keys are bits * _MAX_RATERS + index).
_MAX_RATERS = 1 << 20
# Up to this many (static) rater slots, random_subsets ranks keys by pairwise comparison
# (raters^2 work per subset) instead of sorting them.
_RANK_MAX_RATERS = 32

SeedLike = Union[tf.Tensor, Sequence[int], int, tf.random.Generator]


def seed_tensor(seed: SeedLike) -> tf.Tensor:
  """A stateless-RNG seed, int64 [2], from a [2] tensor/sequence, a Python int or a Generator;
  or per-row seeds, int64 [batch, 2], from a [batch, 2] tensor/sequence (static rank 2).

  A ``tf.random.Generator`` is advanced (one ``make_seeds`` call), so successive calls differ.
  """
  if isinstance(seed, tf.random.Generator):
    return tf.cast(seed.make_seeds(1)[:, 0], tf.int64)
  if isinstance(seed, int):
    return tf.constant([seed, 0], tf.int64)
  seed = tf.convert_to_tensor(seed)
  if not seed.dtype.is_integer:
    raise TypeError(f"upsample_ratings: seed must be an integer tensor of shape [2] or "
                    f"[batch, 2], got dtype {seed.dtype.name}")
  seed = tf.cast(seed, tf.int64)
  if seed.shape.rank == 2:
    seed.shape.assert_is_compatible_with([None, 2])
    return seed
  seed.shape.assert_is_compatible_with([2])
  return tf.reshape(seed, [2])


def _per_row(seed: tf.Tensor) -> bool:
  """Whether ``seed`` (from :func:`seed_tensor`) holds one seed per row ([batch, 2])."""
  return seed.shape.rank == 2


def row_has_ratings(mask: tf.Tensor) -> tf.Tensor:
  """[batch] bool: rows of ``mask`` ([batch, raters] bool) with at least one valid rater."""
  return tf.reduce_any(tf.cast(mask, tf.bool), axis=-1)


def rating_std(points: tf.Tensor, mask: tf.Tensor, ddof: int = 0) -> tf.Tensor:
  """Per-utterance standard deviation of the valid ratings.

  Args:
    points: [batch, raters, 2] float (activation, valence); masked entries may hold anything.
    mask: [batch, raters] bool.
    ddof: 0 = population std (default), 1 = Bessel-corrected sample std.

  Returns:
    [batch, 2] in points.dtype; 0 where there are <= ddof valid raters. Differentiable, with a
    zero (not NaN) gradient where the std is 0.
  """
  points = tf.convert_to_tensor(points)
  mask = tf.cast(mask, tf.bool)
  dtype = points.dtype
  mask_f = tf.cast(mask, dtype)[..., None]  # [batch, raters, 1]
  values = tf.where(mask[..., None], points, tf.zeros_like(points))  # NaN padding cannot leak.
  count = tf.reduce_sum(mask_f, axis=1)  # [batch, 1]
  mean = tf.reduce_sum(values, axis=1) / tf.maximum(count, 1)
  # Two-pass variance: mean of squares minus squared mean cancels badly in float16.
  squares = tf.reduce_sum(tf.square((values - mean[:, None, :]) * mask_f), axis=1)
  var = squares / tf.maximum(count - ddof, 1)
  positive = var > 0
  # sqrt'(0) is infinite: take the root of a safe value and select, so the gradient is 0, not NaN.
  return tf.where(positive, tf.sqrt(tf.where(positive, var, tf.ones_like(var))),
                  tf.zeros_like(var))


def random_subsets(mask: tf.Tensor, *, samples: int, seed: tf.Tensor) -> tf.Tensor:
  """Random non-empty subsets of each row's valid raters: size k ~ U{1..n}, then uniform.

  Args:
    mask: [batch, raters] bool, True for a valid rater.
    samples: subsets drawn per row.
    seed: int64 [2], or [batch, 2] per-row seeds (see :func:`stateless_bits`).

  Returns:
    [batch, samples, raters] bool, True where the rater is in the subset; every subset of a row
    with n >= 1 valid raters holds 1..n of them (each size with probability 1/n), never a masked
    rater; rows with no valid rater get empty subsets.
  """
  mask = tf.cast(mask, tf.bool)
  batch, raters = tf.shape(mask)[0], tf.shape(mask)[1]
  # The k raters with the smallest random keys form a uniformly random size-k subset. The keys
  # are 32 random bits with the rater index below them, so they never tie.
  n_valid = tf.reduce_sum(tf.cast(mask, tf.int32), axis=-1)  # [batch]
  size_u = stateless_uniform01([batch, samples], seed, stream=1)
  k = tf.cast(tf.floor(size_u * tf.cast(n_valid, tf.float32)[:, None]), tf.int32) + 1  # 1..n
  k = tf.clip_by_value(k, 1, tf.maximum(n_valid, 1)[:, None])
  bits = tf.cast(stateless_bits([batch, samples, raters], seed, stream=2), tf.int64)
  keys = bits * _MAX_RATERS + tf.range(tf.cast(raters, tf.int64))
  keys = tf.where(mask[:, None, :], keys, tf.int64.max)  # invalid raters sort last
  static_raters = mask.shape[1]
  if static_raters is not None and static_raters <= _RANK_MAX_RATERS:
    # A valid rater's key is among the k smallest iff fewer than k keys are smaller: ranks by
    # pairwise comparison. Same subsets as the sort below (valid keys are distinct); XLA's CPU
    # sort of many 6-key rows took 1.3 ms of the DiffKDE batch's 1.8 ms upsampling, this ~0.1 ms.
    rank = tf.reduce_sum(tf.cast(keys[..., None, :] < keys[..., :, None], tf.int32), axis=-1)
    return tf.logical_and(rank < k[..., None], mask[:, None, :])
  threshold = tf.gather(tf.sort(keys, axis=-1), k[..., None] - 1, batch_dims=2)  # [b, s, 1]
  return tf.logical_and(keys <= threshold, mask[:, None, :])


def upsample_ratings(points: tf.Tensor,
                     mask: Optional[tf.Tensor] = None,
                     *,
                     samples: int = 200,
                     seed: SeedLike,
                     limits: Tuple[float, float] = (-1.0, 1.0),
                     std_ddof: int = 0,
                     std_epsilon: float = STD_EPSILON) -> tf.Tensor:
  """Zhang et al.'s upsampled points for a batch of utterances (see the module docstring).

  Args:
    points: [batch, raters, 2] float16/32/64, (activation, valence) per rater, in the limits.
      Masked entries may hold anything (NaN padding included).
    mask: [batch, raters] bool, True for a valid rater; None = all valid.
    samples: points drawn per utterance (the papers: 200).
    seed: int tensor [2] for the stateless RNG (or a Python int, or a tf.random.Generator); or
      per-row seeds, int [batch, 2] (static rank 2): row b's output is then bit-identical to
      this function's on ``points[b:b+1]``, ``mask[b:b+1]`` with ``seed=seeds[b]``, so a row's
      numbers do not depend on the other rows of the batch (their order, their number).
    limits: (lo, hi) of both axes; the points are clamped into it.
    std_ddof: 0 = population std of the ratings (default), 1 = sample std as the authors' code.
    std_epsilon: added to the noise half-width std/2 (footnote 1 of the annotators paper).

  Returns:
    [batch, samples, 2] in points.dtype, within [lo, hi]. Differentiable with respect to the
    valid points (through the subset means and the noise half-width); no Python loop over rows,
    so it runs under tf.function(jit_compile=True).
  """
  points = tf.convert_to_tensor(points)
  if not points.dtype.is_floating:
    raise TypeError(f"upsample_ratings: points must be float16/32/64, got {points.dtype.name}")
  if points.shape.rank != 3 or (points.shape[-1] is not None and points.shape[-1] != 2):
    raise ValueError(f"upsample_ratings: points must be [batch, raters, 2] (activation, "
                     f"valence), got shape {points.shape}")
  lo, hi = float(limits[0]), float(limits[1])
  if not lo < hi:
    raise ValueError(f"upsample_ratings: limits must be (lo, hi) with lo < hi, got {limits}")
  if samples < 1:
    raise ValueError(f"upsample_ratings: samples must be >= 1, got {samples}")
  if points.shape[1] is not None and points.shape[1] > _MAX_RATERS:
    raise ValueError(f"upsample_ratings: at most {_MAX_RATERS} rater slots per row, got "
                     f"{points.shape[1]}")
  dtype = points.dtype
  shape = tf.shape(points)
  batch, raters = shape[0], shape[1]
  if mask is None:
    mask = tf.ones([batch, raters], tf.bool)
  mask = tf.cast(mask, tf.bool)
  if tf.executing_eagerly():
    _check_finite(points, mask)
  seed = seed_tensor(seed)
  if _per_row(seed) and not seed.shape[:1].is_compatible_with(points.shape[:1]):
    raise ValueError(f"upsample_ratings: per-row seeds {seed.shape} do not match the "
                     f"{points.shape[0]} rows of points {points.shape}")

  chosen = random_subsets(mask, samples=samples, seed=seed)  # [batch, samples, raters]

  values = tf.where(mask[..., None], points, tf.zeros_like(points))
  chosen_f = tf.cast(chosen, dtype)
  subset_sum = tf.linalg.matmul(chosen_f, values)  # [batch, samples, 2]
  subset_mean = subset_sum / tf.maximum(tf.reduce_sum(chosen_f, axis=-1, keepdims=True), 1)

  half_width = rating_std(points, mask, ddof=std_ddof) / 2 + tf.cast(std_epsilon, dtype)
  noise_u = tf.cast(stateless_uniform01([batch, samples, 2], seed, stream=3), dtype)
  noise = (2 * noise_u - 1) * half_width[:, None, :]  # U(-half_width, half_width)
  upsampled = tf.clip_by_value(subset_mean + noise, tf.cast(lo, dtype), tf.cast(hi, dtype))
  centre = tf.cast((lo + hi) / 2, dtype)
  return tf.where(row_has_ratings(mask)[:, None, None], upsampled, centre)


def _hash32(x: tf.Tensor) -> tf.Tensor:
  """Wellons' lowbias32 integer finaliser: uint32 -> uint32, a bijection that mixes every bit."""
  x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
  x = x * tf.constant(0x7FEB352D, tf.uint32)
  x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
  x = x * tf.constant(0x846CA68B, tf.uint32)
  return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def stateless_bits(shape, seed: tf.Tensor, stream: int) -> tf.Tensor:
  """Random uint32 of ``shape``, a pure function of (seed, stream, element index).

  Same numbers eagerly and under XLA (unlike tf.random.stateless_uniform in TF 2.17).

  Args:
    shape: output shape (a list of ints or scalar int tensors); at most 2**31 elements (per row
      with per-row seeds).
    seed: int64 [2]; or [batch, 2], one seed per row of ``shape[0] == batch``: row b is then
      bit-identical to ``stateless_bits([1] + shape[1:], seed[b], stream)`` (its element
      index runs over its own elements).
    stream: a small int that separates independent draws from one seed.
  """
  seed = tf.cast(seed, tf.int64)
  per_row = _per_row(seed)
  # [4], or [batch, 4]: each seed's two int64 words as four uint32.
  words = tf.reshape(tf.bitcast(seed, tf.uint32), [-1, 4] if per_row else [4])
  key = _hash32(tf.constant(0x9E3779B9 ^ stream, tf.uint32))
  for i in range(4):
    key = _hash32(tf.bitwise.bitwise_xor(words[..., i], key))
  key2 = _hash32(key + tf.constant(0x632BE5AB, tf.uint32))
  if per_row:  # [batch, 1] keys against each row's own counter [1, count]
    key, key2 = key[:, None], key2[:, None]
  counted = list(shape[1:] if per_row else shape)  # the dims one key's counter runs over
  count = tf.reduce_prod(tf.cast(tf.stack(counted), tf.int32)) if counted else 1
  counter = tf.bitcast(tf.range(count, dtype=tf.int32), tf.uint32)
  bits = _hash32(_hash32(tf.bitwise.bitwise_xor(counter, key)) + key2)
  return tf.reshape(bits, shape)


def stateless_uniform01(shape, seed: tf.Tensor, stream: int) -> tf.Tensor:
  """float32 uniforms on [0, 1) with 24 random bits; see :func:`stateless_bits`."""
  bits = stateless_bits(shape, seed, stream)
  return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (2.0**-24)


def _check_finite(points: tf.Tensor, mask: tf.Tensor) -> None:
  """Eager only: raises ValueError naming the first row with a NaN/Inf valid rating."""
  bad = tf.logical_and(mask, tf.logical_not(tf.reduce_all(tf.math.is_finite(points), axis=-1)))
  bad_rows = tf.where(tf.reduce_any(bad, axis=-1))[:, 0]
  if bad_rows.shape[0]:
    row = int(bad_rows[0])
    rater = int(tf.where(bad[row])[0, 0])
    raise ValueError(f"upsample_ratings: row {row} (rater slot {rater}) has a NaN or infinite "
                     f"valid rating {points[row, rater].numpy().tolist()}; mask it out or fix it "
                     f"({int(bad_rows.shape[0])} bad row(s) in total)")
