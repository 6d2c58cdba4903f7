"""One YAML file per pipeline, validated at load time.

Each stage owns a section: a dataclass registered with `@section("name")`, whose fields carry a
default and a help text (`field(default=…, metadata={"help": …})`). The pipeline file is a mapping
of section names to mappings; anything unknown or mistyped is an error that names the file and the
dotted field path::

    ConfigError: examples/bad.yaml: filter.readability.max_paragraph_words: expected int, got 'many'

>>> @section("demo_section")
... @dataclass
... class Demo:
...     n: int = field(default=4, metadata={"help": "samples per prompt"})
>>> load_config_dict({"demo_section": {"n": 8}}).section("demo_section").n
8
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

SECTIONS: dict[str, type] = {}


class ConfigError(ValueError):
    """Invalid configuration; the message names the file and the field."""


def section(name: str):  # type: ignore[no-untyped-def]
    """Register a dataclass as the config section `name`."""

    def deco(cls: type[T]) -> type[T]:
        if not is_dataclass(cls):
            raise TypeError(f"config section {name} must be a dataclass")
        # Two stages claiming one name would silently shadow each other, depending on import order.
        old = SECTIONS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"config section {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        SECTIONS[name] = cls
        return cls

    return deco


@section("workspace")
@dataclass
class WorkspaceConfig:
    path: str | None = field(
        default=None,
        metadata={"path": True, "help": "workspace folder; else --workspace, $DATAENGINE_WORKSPACE, or ./workspace"},
    )
    sql_allowed_dirs: list[str] = field(
        default_factory=list,
        metadata={"help": "folders `dataengine sql` may read besides the workspace (read_csv, glob, …)"},
    )


@dataclass
class PipelineConfig:
    """A parsed pipeline file: one instance per registered section, defaults where omitted."""

    sections: dict[str, Any]
    source: str = "<defaults>"
    pipeline: str | None = None

    def section(self, name: str) -> Any:
        _import_stage_sections()
        if name not in self.sections:
            if name not in SECTIONS:
                raise ConfigError(f"{self.source}: unknown config section {name!r}")
            self.sections[name] = SECTIONS[name]()
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        _import_stage_sections()
        out: dict[str, Any] = {}
        if self.pipeline:
            out["pipeline"] = self.pipeline
        for name in SECTIONS:
            # Relative path defaults (e.g. output_dir) mean the current directory; written out
            # absolute, the file reads back the same wherever it is saved.
            out[name] = _to_plain(self.section(name), base_dir=Path.cwd())
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def config_hash(self, name: str) -> str:
        from dataengine.records import content_hash

        return content_hash(json.dumps(_to_plain(self.section(name)), sort_keys=True))[:12]


def _to_plain(obj: Any, base_dir: Path | None = None) -> Any:
    """Plain data of a section; with `base_dir`, relative path fields are made absolute against it."""
    if is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in fields(obj):
            v = _to_plain(getattr(obj, f.name), base_dir)
            if base_dir is not None and f.metadata.get("path") and isinstance(v, str):
                v = resolve_path(v, base_dir, f.metadata["path"])
            out[f.name] = v
        return out
    if isinstance(obj, dict):
        return {k: _to_plain(v, base_dir) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v, base_dir) for v in obj]
    return obj


def _import_stage_sections() -> None:
    """Stage modules register their sections on import; make sure all of them are imported."""
    import importlib

    for mod in STAGE_CONFIG_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # A stage module that is not installed on this machine (e.g. an optional extra) simply
            # contributes no section; any other import error is a bug and propagates.
            if e.name is None or not mod.startswith(e.name):
                raise


# Modules that define config sections; each stage issue appends its own.
STAGE_CONFIG_MODULES: list[str] = [
    "dataengine.ingest",
    "dataengine.generate",
    "dataengine.filter_stage",
    "dataengine.verify.stage",
    "dataengine.verify.select",
    "dataengine.dedup.config",
    "dataengine.mix.config",
    "trainers.config",
    "dataengine.report",
    "dataengine.pipeline",
]


# A config expands to at most this many YAML nodes once aliases are followed: anchors for shared
# settings stay fine, a "billion laughs" alias bomb (9 aliases of 9 aliases of …) is refused.
MAX_YAML_NODES = 100_000


def safe_load_bounded(text: str, source: str = "<yaml>", max_nodes: int = MAX_YAML_NODES) -> Any:
    """`yaml.safe_load`, refusing documents whose aliases expand beyond `max_nodes` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        # Post-order over the node graph (aliases are shared nodes): the expanded size of a node is
        # 1 + its children's, memoised per node, so the count itself never expands anything.
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        on_path: set[int] = set()
        while stack:
            n, done = stack.pop()
            if id(n) in sizes:
                continue
            children: list[yaml.Node] = []
            if isinstance(n, yaml.SequenceNode):
                children = list(n.value)
            elif isinstance(n, yaml.MappingNode):
                children = [x for kv in n.value for x in kv]
            if done:
                on_path.discard(id(n))
                total = 1 + sum(sizes.get(id(c), 0) for c in children)
                if total > max_nodes:
                    raise ConfigError(f"{source}: YAML expands to more than {max_nodes} nodes through aliases "
                                      f"(near line {n.start_mark.line + 1}); refusing an alias bomb")
                sizes[id(n)] = total
                continue
            if id(n) in on_path:
                raise ConfigError(f"{source}: YAML alias refers to itself (line {n.start_mark.line + 1})")
            on_path.add(id(n))
            stack.append((n, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | Path | None) -> PipelineConfig:
    """Load and validate a pipeline YAML file (None: all defaults)."""
    if path is None:
        return load_config_dict({}, "<defaults>")
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config: {e.strerror}") from None
    try:
        data = safe_load_bounded(text, str(p)) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections, got {type(data).__name__}")
    return load_config_dict(data, str(p), base_dir=p.resolve().parent)


def load_config_dict(data: dict[str, Any], source: str = "<dict>", base_dir: Path | None = None) -> PipelineConfig:
    """Build every section of `data`. Relative paths in fields marked `path` resolve against
    `base_dir` (the config file's folder), so a config runs the same from any directory."""
    _import_stage_sections()
    data = dict(data)
    pipeline = data.pop("pipeline", None)
    if pipeline is not None and not isinstance(pipeline, str):
        raise ConfigError(f"{source}: pipeline: expected a pipeline name, got {pipeline!r}")
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"{source}: unknown section {name!r}; known: {', '.join(sorted(SECTIONS))}")
        sections[name] = build(SECTIONS[name], value, source, name, base_dir)
    return PipelineConfig(sections, source, pipeline)


def closest(name: str, known: typing.Iterable[str]) -> str:
    """` (did you mean X?)` for the nearest known name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def resolve_path(value: str, base_dir: Path | None, kind: str | bool) -> str:
    """A path field's value as written in a config file under `base_dir`.

    kind True: a file or folder path, resolved when relative. kind "maybe": a path or a name (a hub
    id, a built-in template), resolved only when the config-relative path exists."""
    if base_dir is None or not value or value.startswith(("~", "/")) or "://" in value:
        return value
    candidate = Path(os.path.normpath(base_dir / value))
    if kind == "maybe" and not candidate.exists():
        return value
    return str(candidate)


def build(cls: type[T], value: Any, source: str, path: str, base_dir: Path | None = None) -> T:
    """Build dataclass `cls` from a mapping, checking every field's type.

    A class may declare `ALIASES` (other spellings, e.g. TRL's field names, mapped to its own) and a
    `normalize_raw(mapping)` classmethod that rewrites the raw mapping first."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {path}: expected a mapping, got {value!r}")
    normalize = getattr(cls, "normalize_raw", None)
    if callable(normalize):
        try:
            value = normalize(dict(value))
        except ValueError as e:
            raise ConfigError(f"{source}: {path}: {e}") from None
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    aliases: dict[str, str] = getattr(cls, "ALIASES", {})
    renamed: dict[str, Any] = {}
    for key, v in value.items():
        target = aliases.get(key, key)
        if target not in known:
            raise ConfigError(f"{source}: {path}.{key}: unknown field{closest(key, [*known, *aliases])}; "
                              f"known: {', '.join(known)}")
        if target in renamed:
            raise ConfigError(f"{source}: {path}.{key}: given twice (as {key!r} and as its other name {target!r})")
        renamed[target] = v
    value = renamed
    kwargs = {}
    for name, f in known.items():
        if name in value:
            v = coerce(hints[name], value[name], source, f"{path}.{name}", base_dir)
            kind = f.metadata.get("path")
            if kind and isinstance(v, str):
                v = resolve_path(v, base_dir, kind)
            _check_range(name, v, f, source, f"{path}.{name}")
            kwargs[name] = v
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{source}: {path}.{name}: required field missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(f"{source}: {path}: {e}") from None
    return obj


# Sizes, limits, counts and timeouts are never negative (`max_row_bytes: -1` read nothing and
# exited 0). A field states other bounds with metadata {"min": …, "max": …}; `max_steps` keeps the
# trainers' "-1 = unset" convention.
_NON_NEGATIVE = re.compile(r"(^max_|^min_|_bytes$|_chars$|_rows$|_size$|timeout|_s$|^workers$|retries|_tokens$"
                           r"|^n$|^batch|_length$|_share$|_overlap$|_hits$)")
_SIGNED_OK = frozenset({"max_steps"})


def _check_range(name: str, value: Any, f: Any, source: str, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: {path}: {value!r} is not a finite number")
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is None and name not in _SIGNED_OK and _NON_NEGATIVE.search(name):
        lo = 0
    if lo is not None and value < lo:
        raise ConfigError(f"{source}: {path}: {value!r} is out of range (must be >= {lo})")
    if hi is not None and value > hi:
        raise ConfigError(f"{source}: {path}: {value!r} is out of range (must be <= {hi})")


def coerce(tp: Any, value: Any, source: str, path: str, base_dir: Path | None = None) -> Any:
    """Check `value` against type `tp` (and convert where YAML is loose, e.g. int → float)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(a, value, source, path, base_dir)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{source}: {path}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {path}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {path}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [coerce(inner, v, source, f"{path}[{i}]", base_dir) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {path}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {coerce(kt, k, source, path): coerce(vt, v, source, f"{path}.{k}", base_dir) for k, v in value.items()}
    if is_dataclass(tp):
        return build(tp, value, source, path, base_dir)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {path}: expected int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {path}: expected float, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {path}: expected string, got {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{source}: {path}: expected {_type_name(tp)}, got {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def apply_overrides(obj: T, overrides: dict[str, Any], source: str = "command line") -> T:
    """Return a copy of section `obj` with `overrides` (flags) applied and type-checked."""
    hints = typing.get_type_hints(type(obj))
    aliases: dict[str, str] = getattr(type(obj), "ALIASES", {})
    clean = {}
    for k, v in overrides.items():
        if v is None:
            continue
        k = aliases.get(k, k)
        if k not in hints:
            raise ConfigError(f"{source}: unknown field {k!r} for {type(obj).__name__}{closest(k, [*hints, *aliases])}")
        clean[k] = coerce(hints[k], v, source, k)
        _check_range(k, clean[k], {f.name: f for f in fields(obj)}[k], source, k)  # type: ignore[arg-type]
    return dataclasses.replace(obj, **clean)  # type: ignore[type-var]


def field_help(cls: type) -> list[tuple[str, str, Any]]:
    """(name, help, default) for each field of a section, for `config show --help-fields`."""
    out = []
    others: dict[str, list[str]] = {}
    for alias, target in getattr(cls, "ALIASES", {}).items():
        others.setdefault(target, []).append(alias)
    for f in fields(cls):  # type: ignore[arg-type]
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)  # type: ignore[misc]
        text = f.metadata.get("help", "")
        if f.name in others:
            text += f" (also: {', '.join(others[f.name])})"
        out.append((f.name, text, _to_plain(default)))
    return out
