"""What a corpus's prepared output depends on, as one sha256, and what changed since last time.

The fingerprint covers the writer's output format, the settings (corpus, shard size, seed,
demo, ground truth, each feature extractor's name, width and ``fingerprint`` attribute, i.e. its
model and settings), every utterance's record as the reader produced it and, where a feature
needs audio, each audio file's size and modification time (ns). So an edited or replaced audio
file (same path) makes the output stale and its features are extracted again; with labels only
(no feature needs audio) the audio files are never looked at.

``audio_files.json`` beside the manifest keeps the sizes and times (``{utterance id: [path,
size, mtime_ns]}``), so that the next run can say which files changed.
"""

import dataclasses
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence

from tfser.data import schema

# Bump when the shards, sidecars or manifest change in a way an old build must not be resumed or
# reused from.
WRITER_FORMAT = 2
AUDIO_FILES = "audio_files.json"


def audio_files(utterances: Sequence[schema.Utterance]) -> Dict[str, list]:
  """{utterance id: [audio path, size in bytes, mtime in ns]}; size and mtime None if missing."""
  out = {}
  for utt in utterances:
    if not utt.audio_path:
      continue
    try:
      st = os.stat(utt.audio_path)
      out[utt.utterance_id] = [utt.audio_path, int(st.st_size), int(st.st_mtime_ns)]
    except OSError:
      out[utt.utterance_id] = [utt.audio_path, None, None]
  return out


def files_fingerprint(directory: str) -> str:
  """sha256 over (relative path, size, mtime in ns) of every file under ``directory``; "" if
  it is not a directory. (Sizes and times, not contents: model weights are gigabytes.)"""
  if not os.path.isdir(directory):
    return ""
  digest = hashlib.sha256()
  for base, dirs, names in os.walk(directory):
    dirs.sort()
    for name in sorted(names):
      path = os.path.join(base, name)
      st = os.stat(path)
      digest.update(json.dumps([os.path.relpath(path, directory), st.st_size,
                                st.st_mtime_ns]).encode("utf-8"))
  return digest.hexdigest()


def extractor_fingerprint(name: str, model_path: Optional[str] = None) -> str:
  """What a feature set's values depend on besides the input: for a model-based one (wav2vec2,
  bert) the files of its model directory (:func:`files_fingerprint`), for is10 the openSMILE
  version and feature set. prepare sets it as the extractor's ``fingerprint`` attribute, which
  :func:`settings` records, so another model or openSMILE release re-extracts the features."""
  if name == "is10":
    import opensmile  # pylint: disable=g-import-not-at-top  (the IS10 extractor imported it)
    return f"opensmile {getattr(opensmile, '__version__', '?')} IS10 functionals"
  return files_fingerprint(model_path) if model_path else ""


def settings(*, corpus: str, extractors, gt_config, shard_size: int, seed: int,
             demo: bool, transcriber=None) -> dict:
  """The settings part of the fingerprint (JSON-able).

  transcriber: a ``data_prep.transcribe.WhisperTranscriber`` (its ``settings``: model, its files,
  decoding) or None; the key is absent without one, so outputs prepared before --transcribe
  existed keep their fingerprint.
  """
  values = {
      "writer_format": WRITER_FORMAT, "schema_version": schema.SCHEMA_VERSION, "corpus": corpus,
      "shard_size": shard_size, "seed": seed, "demo": bool(demo),
      "ground_truth": gt_config.fingerprint() if gt_config else None,  # not its thread count
      "features": [[e.name, int(e.dim), str(getattr(e, "fingerprint", ""))] for e in extractors],
  }
  if transcriber is not None:
    values["transcribe"] = transcriber.settings
  # JSON-normalised, so it compares equal to a manifest's copy.
  return json.loads(json.dumps(values, sort_keys=True))


def canonical(utt: schema.Utterance) -> str:
  record = dataclasses.asdict(utt)
  if not record.get("transcript_source"):  # as before the field existed: same fingerprints
    record.pop("transcript_source", None)
  return json.dumps(record, sort_keys=True)


def plan_fingerprint(utterances: Sequence[schema.Utterance], settings_: dict,
                     audio: Optional[Dict[str, list]]) -> str:
  """sha256 over the settings, the utterances (in plan order) and their audio files' stats."""
  digest = hashlib.sha256()
  digest.update(json.dumps(settings_, sort_keys=True).encode("utf-8"))
  for utt in utterances:
    digest.update(canonical(utt).encode("utf-8"))
    if audio is not None:
      digest.update(json.dumps(audio.get(utt.utterance_id)).encode("utf-8"))
    digest.update(b"\n")
  return digest.hexdigest()


def changed_audio(old: Dict[str, list], new: Dict[str, list]) -> List[str]:
  """Audio paths whose size or mtime differ between two :func:`audio_files` (same utterance)."""
  return sorted({new[k][0] for k in new
                 if k in old and old[k][0] == new[k][0] and list(old[k]) != list(new[k])})


def describe_change(old_manifest: Optional[dict], old_audio: Optional[Dict[str, list]],
                    settings_: dict, new_audio: Optional[Dict[str, list]]) -> str:
  """Why the previous output is stale, in words (for the user)."""
  if old_manifest is None:
    return "the previous manifest is unreadable"
  if old_manifest.get("schema_version") != settings_["schema_version"]:
    return (f"it was written for schema_version {old_manifest.get('schema_version')!r}, this "
            f"tfser writes {settings_['schema_version']}")
  if not isinstance(old_manifest.get("settings"), dict):
    return "it was written by an older data_prep (its manifest records no settings)"
  reasons = []
  changed = changed_audio(old_audio or {}, new_audio or {})
  if changed:
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    reasons.append(f"{len(changed)} audio file(s) changed since the last prepare ({shown}): "
                   "their features are extracted again")
  old_settings = old_manifest["settings"]
  diff = sorted(k for k in set(old_settings) | set(settings_)
                if old_settings.get(k) != settings_.get(k))
  if diff:
    reasons.append("settings changed: " + ", ".join(diff))
  if not reasons:
    reasons.append("the corpus's labels or metadata changed")
  return "; ".join(reasons)
