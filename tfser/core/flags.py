"""Command-line flags generated from a task's config dataclass: each setting is written once.

A config field declared with :func:`setting` carries its help text (the paper's default is the
field's default) and, optionally, the flag's name when it differs from the field's (the flag
names users already type keep working: ``--label_target`` sets ``CwwConfig.target``).
:func:`define_flags` defines one absl flag per such field, with the field's default, so
``--helpfull`` lists every flag with its default; a nested config field (declared with
:func:`nested`) gives its own fields' flags under a prefix (``<prefix><field>``).
:func:`values_from_flags` reads the parsed values back as the dataclass's keyword arguments.

Only launchers call these (they are the only flag readers); the configs stay plain frozen
dataclasses that library code builds directly.
"""

import dataclasses
import typing
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

from absl import flags

NO_FLAG = "-"  # setting(flag=NO_FLAG): a field without a command-line flag


def setting(default: Any, help: str, *, flag: Optional[str] = None,  # pylint: disable=redefined-builtin
            choices: Optional[Sequence[str]] = None,
            from_flag: Optional[Callable[[Any], Any]] = None, flag_default: Any = None):
  """A config field with its flag: ``default`` (the paper's), ``help``, and optionally

  flag: the flag's name (default: the field's); NO_FLAG for none. choices: an enum flag's values.
  from_flag: converts the flag's value to the field's (e.g. "4" -> 4); flag_default: the flag's
  default when the field's is not a valid flag value (e.g. -1 for None).
  """
  return dataclasses.field(default=default, metadata={
      "help": help, "flag": flag, "choices": tuple(choices) if choices else None,
      "from_flag": from_flag, "flag_default": flag_default})


def same_as(config_class, name: str):
  """A field that another config declares (its ``setting``: default, help, flag), held here too.

  For a setting that belongs to a lower layer's config but is chosen per run: e.g. the
  annotators task's ``hidden_units`` is ``AnnotatorModelConfig.hidden_units``, declared there once
  (same default, help and flag); :func:`pick` builds the lower config back from the run's.
  """
  field = config_class.__dataclass_fields__[name]
  return dataclasses.field(default=field.default,
                           metadata=dict(field.metadata, same_as=config_class))


def pick(config_class, source, **more):
  """``config_class`` built from ``source``'s :func:`same_as` fields of it, plus ``more``."""
  shared = {f.name: getattr(source, f.name) for f in dataclasses.fields(source)
            if f.metadata.get("same_as") is config_class}
  return config_class(**shared, **more)


def nested(config_class, prefix: str, help: str = ""):  # pylint: disable=redefined-builtin
  """A field holding another config dataclass; its flags are ``<prefix><its field>``."""
  return dataclasses.field(default_factory=config_class,
                           metadata={"help": help, "prefix": prefix, "flag": None})


@dataclasses.dataclass(frozen=True)
class _FlagSpec:
  field: str
  flag: str
  kind: str  # bool | integer | float | string | enum | list | nested
  default: Any
  help: str
  choices: Optional[Sequence[str]]
  from_flag: Optional[Callable[[Any], Any]]


def _kind(annotation) -> str:
  origin = typing.get_origin(annotation)
  args = typing.get_args(annotation)
  if origin is typing.Union and type(None) in args:  # Optional[X]
    return _kind(next(a for a in args if a is not type(None)))
  if origin in (tuple, list):
    return "list"
  if dataclasses.is_dataclass(annotation):
    return "nested"
  return {bool: "bool", int: "integer", float: "float", str: "string"}.get(annotation, "")


def specs(config_class, prefix: str = "") -> Dict[str, _FlagSpec]:
  """{flag name: spec} of the config's flag-backed fields (nested configs' flags prefixed)."""
  hints = typing.get_type_hints(config_class)
  out: Dict[str, _FlagSpec] = {}
  for field in dataclasses.fields(config_class):
    meta = field.metadata
    if "help" not in meta or meta.get("flag") == NO_FLAG:
      continue
    kind = _kind(hints[field.name])
    if kind == "nested":
      for name, spec in specs(hints[field.name], prefix + meta["prefix"]).items():
        out[name] = dataclasses.replace(spec, field=f"{field.name}.{spec.field}")
      continue
    if meta.get("choices"):
      kind = "enum"
    if not kind:
      raise TypeError(f"{config_class.__name__}.{field.name}: no flag type for "
                      f"{hints[field.name]!r} (declare it with flag=NO_FLAG)")
    default = field.default
    if meta.get("flag_default") is not None:
      default = meta["flag_default"]
    elif kind == "list":
      default = list(default)
    name = prefix + (meta.get("flag") or field.name)
    out[name] = _FlagSpec(field.name, name, kind, default, meta["help"], meta.get("choices"),
                          meta.get("from_flag"))
  return out


def flag_names(config_class) -> Dict[str, str]:
  """{field: "--flag"} for the config's fields whose flag has another name (for messages)."""
  return {spec.field: "--" + name for name, spec in specs(config_class).items()
          if spec.field != name}


def define_flags(config_class, *, module_name: str, prefix: str = "",
                 exclude: Iterable[str] = (), flag_values=flags.FLAGS) -> Sequence[str]:
  """Defines the config's flags (those not defined yet), listed under ``module_name`` in
  ``--helpfull``. exclude: field names left to another module's flags. Returns the flag names.
  """
  exclude = set(exclude)
  names = []
  for name, spec in specs(config_class, prefix).items():
    if spec.field in exclude:
      continue
    names.append(name)
    if name in flag_values:  # the other task's launcher defined the same flag in this process
      continue
    kwargs = dict(flag_values=flag_values, module_name=module_name)
    if spec.kind == "enum":
      flags.DEFINE_enum(name, spec.default, list(spec.choices), spec.help, **kwargs)
    else:
      define = {"bool": flags.DEFINE_bool, "integer": flags.DEFINE_integer,
                "float": flags.DEFINE_float, "string": flags.DEFINE_string,
                "list": flags.DEFINE_list}[spec.kind]
      define(name, spec.default, spec.help, **kwargs)
  return names


def values_from_flags(config_class, *, prefix: str = "", exclude: Iterable[str] = (),
                      explicit_only: Iterable[str] = (), flag_values=flags.FLAGS) -> Dict:
  """The config's keyword arguments from the parsed flags (nested configs built as well).

  exclude: fields not read here. explicit_only: fields passed only when their flag was given on
  the command line (so that a preset, e.g. a --method row, applies otherwise).
  """
  exclude, explicit_only = set(exclude), set(explicit_only)
  values: Dict[str, Any] = {}
  nested_values: Dict[str, Dict[str, Any]] = {}
  for name, spec in specs(config_class, prefix).items():
    if spec.field in exclude or (spec.field in explicit_only and not flag_values[name].present):
      continue
    value = flag_values[name].value
    if spec.from_flag is not None:
      value = spec.from_flag(value)
    elif spec.kind == "list":
      value = tuple(value)
    if "." in spec.field:
      outer, inner = spec.field.split(".", 1)
      nested_values.setdefault(outer, {})[inner] = value
    else:
      values[spec.field] = value
  hints = typing.get_type_hints(config_class)
  for outer, kwargs in nested_values.items():
    values[outer] = hints[outer](**kwargs)
  return values
