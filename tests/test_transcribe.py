"""data_prep.transcribe and prepare --transcribe, with a tiny random Whisper written here.

References nobody here wrote: greedy decoding is the argmax of the model's own logits, one full
forward pass per token (no cache, no generate); the ASR text of a prepared record is compared
with the transcriber's text of the same file decoded by data_prep.audio; BERT features with
BertExtractor on that text.
"""

import dataclasses
import json
import os
import shutil
from unittest import mock

import numpy as np
from scipy.io import wavfile

import tfser  # noqa: F401
import tensorflow as tf

from absl import flags

from data_prep import audio
from data_prep import corpora
from data_prep import prepare
from data_prep import transcribe
from data_prep import write_tfrecords
from data_prep.errors import DropLog
from tests import encoders_testing
from tests import whisper_testing
from tfser.data import schema
from tfser.testing import records

MAX_NEW = 4
NAME = "tiny-whisper"
CSV_HEADER = ("utterance,audio_path,speaker,split,transcript,annotator,activation,valence,"
              "dominance,category\n")


def _greedy_reference(model, processor, waveform, language="en"):
  """Greedy decoding by hand: argmax of the full forward pass, token by token (language None:
  an English-only model's prompt)."""
  tokenizer = processor.tokenizer
  prompt = (("<|startoftranscript|>", f"<|{language}|>", "<|transcribe|>", "<|notimestamps|>")
            if language else ("<|startoftranscript|>", "<|notimestamps|>"))
  ids = [tokenizer.convert_tokens_to_ids(t) for t in prompt]
  features = processor.feature_extractor([waveform], sampling_rate=16000,
                                         return_tensors="np").input_features
  for _ in range(MAX_NEW):
    logits = model(features, decoder_input_ids=np.array([ids], np.int32)).logits.numpy()
    ids.append(int(logits[0, -1].argmax()))
    if ids[-1] == tokenizer.eos_token_id:
      break
  return tokenizer.decode(ids, skip_special_tokens=True).strip()


def _noise(seconds, seed):
  rng = np.random.default_rng(seed)
  return (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)


_WHISPER = {}


def _whisper():
  """The tiny Whisper's directory, model and processor (written once per test process)."""
  if not _WHISPER:
    path = os.path.join(tf.compat.v1.test.get_temp_dir(), "models", "whisper")
    model, processor = whisper_testing.write_whisper(path, name_or_path="org/" + NAME)
    _WHISPER.update(path=path, model=model, processor=processor)
  return _WHISPER["path"], _WHISPER["model"], _WHISPER["processor"]


class TranscriberTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.path, cls.model, cls.processor = _whisper()
    cls.transcriber = transcribe.WhisperTranscriber(transcribe.TranscribeConfig(
        cls.path, batch_size=2, max_new_tokens=MAX_NEW))

  def test_name_source_and_settings(self):
    self.assertEqual(self.transcriber.name, "org/" + NAME)
    self.assertEqual(self.transcriber.source, "asr:org/" + NAME)
    settings = self.transcriber.settings
    self.assertEqual((settings["language"], settings["task"], settings["max_new_tokens"]),
                     ("en", "transcribe", MAX_NEW))

  def test_batched_greedy_matches_reference(self):
    waveforms = [_noise(s, seed) for seed, s in enumerate((1.0, 0.3, 2.5))]  # batches of 2 and 1
    texts = self.transcriber.transcribe(waveforms)
    expected = [_greedy_reference(self.model, self.processor, w) for w in waveforms]
    self.assertEqual(texts, expected)
    self.assertTrue(all(texts))
    # transformers' own language/task route (the checkpoint's generation config) agrees.
    features = self.processor.feature_extractor(waveforms, sampling_rate=16000,
                                                return_tensors="np").input_features
    tokens = self.model.generate(features, language="en", task="transcribe",
                                 max_new_tokens=MAX_NEW + 3)
    self.assertEqual(texts, [t.strip() for t in self.processor.tokenizer.batch_decode(
        tokens.numpy(), skip_special_tokens=True)])

  def test_language_is_in_the_prompt(self):
    german = transcribe.WhisperTranscriber(transcribe.TranscribeConfig(
        self.path, language="German", max_new_tokens=MAX_NEW))
    waveform = _noise(1.0, 7)
    self.assertEqual(german.transcribe([waveform]),
                     [_greedy_reference(self.model, self.processor, waveform, "de")])

  def test_english_only_checkpoint_has_no_language_in_its_prompt(self):
    path = os.path.join(self.get_temp_dir(), "whisper.en")
    shutil.copytree(self.path, path)
    with open(os.path.join(path, "generation_config.json")) as f:
      generation = json.load(f)
    with open(os.path.join(path, "generation_config.json"), "w") as f:
      json.dump(dict(generation, is_multilingual=False), f)
    english = transcribe.WhisperTranscriber(transcribe.TranscribeConfig(
        path, max_new_tokens=MAX_NEW))
    self.assertEqual(english.settings["prompt"], ["<|startoftranscript|>", "<|notimestamps|>"])
    waveform = _noise(1.0, 5)
    self.assertEqual(english.transcribe([waveform]),
                     [_greedy_reference(self.model, self.processor, waveform, None)])
    with self.assertRaisesRegex(ValueError, "--whisper_language='de'.*English-only"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig(path, language="de"))

  def test_pytorch_safetensors_checkpoint_loads_without_torch(self):
    path = os.path.join(self.get_temp_dir(), "whisper_pt")
    shutil.copytree(self.path, path)
    encoders_testing.rewrite_as_pytorch_safetensors(self.model, path)
    converted = transcribe.WhisperTranscriber(transcribe.TranscribeConfig(
        path, max_new_tokens=MAX_NEW))
    waveform = _noise(0.5, 11)
    self.assertEqual(converted.transcribe([waveform]), self.transcriber.transcribe([waveform]))

  def test_long_audio_is_transcribed_in_30_second_windows(self):
    waveform = _noise(31.0, 3)
    head, tail = self.transcriber.transcribe([waveform[:16000 * 30], waveform[16000 * 30:]])
    self.assertEqual(self.transcriber.transcribe([waveform]), [f"{head} {tail}".strip()])

  def test_bad_settings_name_the_flag_or_file(self):
    with self.assertRaisesRegex(ValueError, "--whisper_language='klingon'"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig(self.path, language="klingon"))
    with self.assertRaisesRegex(ValueError, "--whisper_task='summarise'"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig(self.path, task="summarise"))
    with self.assertRaisesRegex(ValueError, "--whisper_max_new_tokens=500: .* at most 60"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig(self.path, max_new_tokens=500))
    # A language Whisper knows but this tokenizer lacks.
    with self.assertRaisesRegex(ValueError, "lacks <\\|es\\|>"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig(self.path, language="es"))
    with self.assertRaisesRegex(FileNotFoundError, "/no/such/whisper"):
      transcribe.WhisperTranscriber(transcribe.TranscribeConfig("/no/such/whisper"))


class PrepareTranscribeTest(tf.test.TestCase):
  """A CSV corpus: u1 has a transcript, u2..u5 none; shards of 2; BERT features on the text."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = os.path.join(tf.compat.v1.test.get_temp_dir(), "asr")
    cls.model_dir = os.path.dirname(_whisper()[0])  # holds whisper/ and bert/
    encoders_testing.write_bert(os.path.join(cls.model_dir, "bert"))
    cls.root = os.path.join(base, "corpus")
    os.makedirs(os.path.join(cls.root, "wav"))
    rows = []
    for i in range(1, 6):
      path = os.path.join(cls.root, "wav", f"u{i}.wav")
      wavfile.write(path, 16000, (_noise(0.4 + 0.2 * i, i) * 32767).astype(np.int16))
      text = "the cat sat" if i == 1 else ""
      rows.append(f"u{i},wav/u{i}.wav,s{i % 2},train,{text},r1,0.5,0.2,0,happy")
    with open(os.path.join(cls.root, "manifest.csv"), "w") as f:
      f.write(CSV_HEADER + "\n".join(rows) + "\n")
    cls.transcriber = prepare.make_transcriber(transcribe.TranscribeConfig(
        os.path.join(cls.model_dir, "whisper"), model_name=NAME, batch_size=2,
        max_new_tokens=MAX_NEW))
    cls.bert = prepare.make_extractors(("bert",), cls.model_dir)
    cls.out = os.path.join(base, "out")
    cls.manifest = cls._prepare(cls.out)

  @classmethod
  def _prepare(cls, out, on_event=None):
    return write_tfrecords.prepare_corpus(
        corpora.read("CSV", cls.root, dropped=DropLog()), corpus="CSV", out_dir=out,
        extractors=cls.bert, shard_size=2, gt_config=None, progress=False,
        transcriber=cls.transcriber, on_event=on_event)

  def _records(self, out):
    dims = {"bert": self.manifest["features"]["bert"]["dim"]}
    files = sorted(os.path.join(out, "CSV", n) for n in self.manifest["shards"])
    return {r["utterance_id"].numpy().decode(): r for r in
            tf.data.TFRecordDataset(files).map(lambda s: records.parse_example(s, dims, False))}

  def test_asr_text_lands_in_the_records_with_its_source(self):
    rows = self._records(self.out)
    self.assertEqual(sorted(rows), ["u1", "u2", "u3", "u4", "u5"])
    self.assertEqual(rows["u1"]["transcript"].numpy().decode(), "the cat sat")
    self.assertEqual(rows["u1"]["transcript_source"].numpy().decode(), "corpus")
    waveforms = [audio.load_audio(os.path.join(self.root, "wav", f"u{i}.wav")) for i in range(2, 6)]
    expected = self.transcriber.transcribe(waveforms)
    for i, text in zip(range(2, 6), expected):
      self.assertTrue(text)
      self.assertEqual(rows[f"u{i}"]["transcript"].numpy().decode("utf-8"), text)
      self.assertEqual(rows[f"u{i}"]["transcript_source"].numpy().decode(), "asr:" + NAME)
    # BERT ran on the ASR text (and on the corpus's text for u1).
    utterances = [schema.Utterance("CSV", f"u{i}", transcript=t)
                  for i, t in zip(range(1, 6), ["the cat sat"] + expected)]
    self.assertAllClose(np.stack([rows[u.utterance_id]["features/bert"] for u in utterances]),
                        self.bert[0].batch(utterances), atol=1e-5)

  def test_manifest_records_which_utterances_got_asr(self):
    transcripts = self.manifest["transcripts"]
    self.assertEqual((transcripts["with_text"], transcripts["without"]), (5, 0))
    self.assertEqual(transcripts["by_source"], {"asr:" + NAME: 4, "corpus": 1})
    asr = transcripts["asr"]
    self.assertEqual((asr["count"], asr["ids"], asr["model"]), (4, ["u2", "u3", "u4", "u5"], NAME))
    self.assertEqual(asr["no_text"], {"count": 0, "ids": []})
    self.assertEqual(self.manifest["settings"]["transcribe"]["source"], "asr:" + NAME)
    with open(os.path.join(self.out, "CSV", "manifest.json")) as f:
      self.assertEqual(json.load(f)["transcripts"], transcripts)

  def test_killed_prepare_resumes_without_transcribing_finished_shards(self):
    out = os.path.join(self.get_temp_dir(), "killed")

    class Killed(Exception):
      pass

    def kill_after_first_shard(event, name):
      if event == "shard_done":
        raise Killed(name)

    with self.assertRaises(Killed):
      self._prepare(out, kill_after_first_shard)
    with mock.patch.object(self.transcriber, "transcribe",
                           wraps=self.transcriber.transcribe) as calls:
      manifest = self._prepare(out)
    # The first shard (u1 with its own text, u2) was finished: only u3..u5 are transcribed.
    self.assertEqual(sum(len(c.args[0]) for c in calls.call_args_list), 3)
    self.assertEqual(manifest["shards"], self.manifest["shards"])  # byte-identical shards
    self.assertEqual(manifest["transcripts"], self.manifest["transcripts"])
    with mock.patch.object(self.transcriber, "transcribe") as calls:
      self.assertEqual(self._prepare(out)["fingerprint"], manifest["fingerprint"])  # done
    calls.assert_not_called()

  def test_transcribe_all_also_replaces_the_corpus_text(self):
    every = dataclasses.replace(self.transcriber.config, every_utterance=True)
    with mock.patch.object(self.transcriber, "config", every), \
         mock.patch.object(self.transcriber, "every_utterance", True):
      out, asr_ids, silent, errors = transcribe.fill_transcripts(
          [schema.Utterance("CSV", "u1", audio_path=os.path.join(self.root, "wav", "u1.wav"),
                            transcript="the cat sat"),
           schema.Utterance("CSV", "u9", audio_path="/no/such.wav")], self.transcriber,
          audio.load_audio)
      self.assertNotEqual(self.transcriber.settings, self.manifest["settings"]["transcribe"])
    self.assertEqual((asr_ids, silent, sorted(errors)), (["u1"], [], ["u9"]))
    self.assertEqual(out[0].transcript_source, "asr:" + NAME)
    self.assertNotEqual(out[0].transcript, "the cat sat")
    self.assertIn("/no/such.wav", str(errors["u9"]))
    self.assertIs(out[1].transcript_source, "")


  def _main(self, *args):
    prepare._define_flags()  # pylint: disable=protected-access
    flags.FLAGS.unparse_flags()
    try:
      return prepare.main(flags.FLAGS(["prepare"] + list(args)))
    finally:
      flags.FLAGS.unparse_flags()

  def test_command_line(self):
    from absl import app  # pylint: disable=g-import-not-at-top
    out = os.path.join(self.get_temp_dir(), "cli")
    common = ("--corpus=csv", f"--root={self.root}", f"--out_dir={out}", "--noprogress",
              "--noground_truth")
    with self.assertRaisesRegex(app.UsageError, "--transcribe_all needs --transcribe"):
      self._main(*common, "--transcribe_all")
    with self.assertRaisesRegex(app.UsageError, "--transcribe needs --whisper_dir or --model_dir"):
      self._main(*common, "--transcribe")
    with self.assertRaisesRegex(app.UsageError, "--whisper_language='xx'"):
      self._main(*common, "--transcribe", f"--model_dir={self.model_dir}", "--whisper_language=xx")
    self.assertEqual(self._main(*common, "--transcribe", "--whisper_dir=/no/such/whisper"), 1)
    self.assertFalse(os.path.exists(out))
    self.assertEqual(self._main(*common, "--transcribe", f"--model_dir={self.model_dir}",
                                "--features=bert", f"--whisper_name={NAME}", "--whisper_batch=2",
                                f"--whisper_max_new_tokens={MAX_NEW}", "--shard_size=2"), 0)
    with open(os.path.join(out, "CSV", "manifest.json")) as f:
      manifest = json.load(f)
    self.assertEqual(manifest["transcripts"], self.manifest["transcripts"])
    self.assertEqual(manifest["shards"], self.manifest["shards"])

  def test_silence_gives_no_text_and_is_listed(self):
    out = os.path.join(self.get_temp_dir(), "silent")
    with mock.patch.object(self.transcriber, "transcribe", side_effect=lambda w: [""] * len(w)):
      manifest = write_tfrecords.prepare_corpus(
          corpora.read("CSV", self.root, dropped=DropLog()), corpus="CSV", out_dir=out,
          shard_size=8, gt_config=None, progress=False, transcriber=self.transcriber)
    transcripts = manifest["transcripts"]
    self.assertEqual((transcripts["with_text"], transcripts["without"]), (1, 4))
    self.assertEqual(transcripts["asr"]["count"], 0)
    self.assertEqual(transcripts["asr"]["no_text"]["ids"], ["u2", "u3", "u4", "u5"])


class SchemaCompatibilityTest(tf.test.TestCase):

  def test_record_without_transcript_source_parses_as_empty(self):
    example = schema.to_example(schema.Utterance("C", "u", transcript="hi"), {})
    self.assertEqual(example.features.feature["transcript_source"].bytes_list.value, [b"corpus"])
    del example.features.feature["transcript_source"]  # as written before the key existed
    parsed = records.parse_example(example.SerializeToString(), {}, False)
    self.assertEqual(parsed["transcript_source"].numpy(), b"")
    self.assertEqual(parsed["transcript"].numpy(), b"hi")
