"""tfser.core.flags: flags generated from config dataclasses, read back as the config's values."""

import dataclasses
from typing import Optional, Tuple
import unittest

from absl import flags

from tfser.core import flags as config_flags
from tfser.core.flags import NO_FLAG, nested, setting
from tfser.models.annotator_config import AnnotatorModelConfig
from tfser.tasks.annotators.config import AnnotatorsConfig
from tfser.tasks.cww.config import CwwConfig


@dataclasses.dataclass(frozen=True)
class _Inner:
  grid_size: int = setting(64, "Grid.")
  sigma: float = setting(8.0, "Slope.")


@dataclasses.dataclass(frozen=True)
class _Outer:
  name: str = setting("a", "A name.", choices=("a", "b"))
  rate: float = setting(0.5, "A rate.", flag="outer_rate")
  corpora: Tuple[str, ...] = setting(("X", "Y"), "Corpora.")
  bins: int = setting(4, "Bins.", choices=("4", "2"), flag_default="4", from_flag=int)
  seed: Optional[int] = setting(None, "-1: none.", flag_default=-1,
                                from_flag=lambda v: None if v < 0 else v)
  hidden: Tuple[int, ...] = setting((3, 2), "Not a flag.", flag=NO_FLAG)
  kde: _Inner = nested(_Inner, "kde_")
  on: bool = setting(True, "Switch.")


def _parse(*argv):
  values = flags.FlagValues()
  names = config_flags.define_flags(_Outer, module_name="tests.outer", flag_values=values)
  values(["prog", *argv])
  return values, names


class ConfigFlagsTest(unittest.TestCase):

  def test_one_flag_per_field_with_its_default_and_prefixed_nested_flags(self):
    values, names = _parse()
    self.assertEqual(sorted(names), ["bins", "corpora", "kde_grid_size", "kde_sigma", "name", "on",
                                     "outer_rate", "seed"])
    self.assertEqual(values["outer_rate"].default, 0.5)
    self.assertEqual(values["outer_rate"].help, "A rate.")
    self.assertEqual(values["seed"].default, -1)
    self.assertEqual(values["corpora"].default, ["X", "Y"])
    self.assertEqual(sorted(f.name for f in values.get_flags_for_module("tests.outer")),
                     sorted(names))
    self.assertIn("(default: '0.5')", values.get_help())
    self.assertEqual(_Outer(**config_flags.values_from_flags(_Outer, flag_values=values)),
                     _Outer())

  def test_values_convert_and_build_nested_configs(self):
    values, _ = _parse("--name=b", "--outer_rate=0.25", "--corpora=Z", "--bins=2", "--seed=3",
                       "--kde_grid_size=32", "--noon")
    config = _Outer(**config_flags.values_from_flags(_Outer, flag_values=values))
    self.assertEqual(config, _Outer(name="b", rate=0.25, corpora=("Z",), bins=2, seed=3,
                                    kde=_Inner(grid_size=32), on=False))

  def test_explicit_only_fields_are_left_to_a_preset_unless_given(self):
    values, _ = _parse("--outer_rate=0.25")
    got = config_flags.values_from_flags(_Outer, flag_values=values,
                                         explicit_only=("rate", "name"))
    self.assertEqual(got["rate"], 0.25)
    self.assertNotIn("name", got)

  def test_an_already_defined_flag_is_kept(self):
    values = flags.FlagValues()
    flags.DEFINE_integer("kde_grid_size", 7, "Defined elsewhere.", flag_values=values)
    config_flags.define_flags(_Outer, module_name="tests.outer", flag_values=values)
    self.assertEqual(values["kde_grid_size"].default, 7)

  def test_every_task_config_field_is_declared_with_help(self):
    for config_class in (CwwConfig, AnnotatorsConfig):
      for field in dataclasses.fields(config_class):
        self.assertTrue(field.metadata.get("help"), f"{config_class.__name__}.{field.name}")

  def test_the_annotator_model_settings_are_declared_once(self):
    # Issue 14: AnnotatorsConfig holds AnnotatorModelConfig's settings (same default, help and
    # flag) instead of re-declaring them, and model_config builds the network's config from them.
    shared = {f.name: f for f in dataclasses.fields(AnnotatorsConfig)
              if f.metadata.get("same_as") is AnnotatorModelConfig}
    self.assertEqual(sorted(shared), ["branch_layers", "dropout", "hidden_units", "model",
                                      "out_bins", "seed", "shared_layers"])
    model_fields = {f.name: f for f in dataclasses.fields(AnnotatorModelConfig)}
    for name, field in shared.items():
      self.assertEqual(field.default, model_fields[name].default, name)
      self.assertEqual(field.metadata["help"], model_fields[name].metadata["help"], name)
    run = AnnotatorsConfig(data_dir="d", model="onehot", hidden_units=7, shared_layers=2,
                           branch_layers=3, dropout=0.5, out_bins=2, seed=11)
    self.assertEqual(run.model_config(input_dim=5, num_annotators=4),
                     AnnotatorModelConfig(model="onehot", input_dim=5, num_annotators=4,
                                          hidden_units=7, shared_layers=2, branch_layers=3,
                                          dropout=0.5, out_bins=2, seed=11))
    values = flags.FlagValues()
    config_flags.define_flags(AnnotatorsConfig, module_name="tests.annotators",
                              flag_values=values)
    self.assertEqual((values["hidden_units"].default, values["out_bins"].default), (256, "4"))


if __name__ == "__main__":
  unittest.main()
