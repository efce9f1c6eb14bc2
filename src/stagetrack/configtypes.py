"""Strict construction of frozen dataclasses from YAML mappings.

This is the one place where untyped params become typed config. Rules (nanoGPT/MOTIP style):

* an unknown key is an error naming the key, where it is (file:line) and the allowed keys;
* a wrong type is an error naming the key, the expected type and the value received;
* ``Literal`` fields list their allowed values;
* floats accept YAML 1.1's dot-less exponent strings (``1e-05``, which ``dvc exp run -S
  lr=1e-5`` writes and PyYAML reads back as a *string*), but not arbitrary strings;
* missing keys take the dataclass default (tests build configs from defaults); the
  completeness of ``params.yaml`` itself is checked by a test, not at run time.

With ``STAGETRACK_PARAMS_TRACE=DIR`` in the environment, every config built here records which
of its keys the process reads, and writes them to ``DIR/<pid>.json`` at exit: the smoke repro
checks dvc.yaml's ``params:`` lists against what each stage's code really read.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import difflib
import json
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError

T = TypeVar("T")

# YAML 1.1 (PyYAML) only reads floats that contain a dot; these are what it leaves as strings.
_FLOAT_STRING = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?\.?(inf|Inf|INF)$")


class _Lines:
    """Dotted key path -> line number in the YAML source, for error messages."""

    def __init__(self, file: str | None = None, lines: Mapping[str, int] | None = None) -> None:
        self.file = file
        self.lines = dict(lines or {})

    def at(self, key: str) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return None


def yaml_line_map(text: str) -> dict[str, int]:
    """Map every dotted key path of a YAML mapping document to its 1-based line."""
    out: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
                out[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[f"{prefix}[{i}]"] = item.start_mark.line + 1
                walk(item, f"{prefix}[{i}]")

    if root is not None:
        walk(root, "")
    return out


def load_yaml(path: str | Path) -> tuple[Any, dict[str, int]]:
    """Read a YAML file; errors name the file and line. Returns (data, key->line map)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            file=path,
            line=mark.line + 1 if mark else None,
        ) from None
    return data, yaml_line_map(text)


TRACE_ENV = "STAGETRACK_PARAMS_TRACE"
_trace: set[str] | None = None
_trace_paused = 0
_traced_classes: dict[type, type] = {}


@contextlib.contextmanager
def untraced() -> Any:
    """Reads inside this block are not recorded (load-time validation reads every key)."""
    global _trace_paused
    _trace_paused += 1
    try:
        yield
    finally:
        _trace_paused -= 1


def _traced_class(cls: type) -> type:
    """A subclass of dataclass ``cls`` whose field reads are recorded under the instance's key."""
    if cls not in _traced_classes:
        names = frozenset(f.name for f in dataclasses.fields(cls) if f.init)

        def __getattribute__(self: Any, name: str) -> Any:
            if name in names and not _trace_paused and _trace is not None:
                key = object.__getattribute__(self, "__dict__").get("_trace_key")
                if key is not None:
                    _trace.add(f"{key}.{name}" if key else name)
            return object.__getattribute__(self, name)

        def __reduce__(self: Any) -> Any:  # pickled (multiprocessing) as the plain class: not traced there
            values = {f.name: object.__getattribute__(self, f.name) for f in dataclasses.fields(cls)}
            return _plain_copy, (cls, values)

        _traced_classes[cls] = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__,
                                                           "__reduce__": __reduce__, "__module__": cls.__module__})
    return _traced_classes[cls]


def _plain_copy(cls: type, values: dict[str, Any]) -> Any:
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: v for k, v in values.items() if k in init})
    for key, value in values.items():
        if key not in init:
            object.__setattr__(obj, key, value)
    return obj


def _write_trace(directory: str) -> None:
    path = Path(directory) / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"argv": sys.argv, "keys": sorted(_trace or ())}))


if os.environ.get(TRACE_ENV):
    _trace = set()
    atexit.register(_write_trace, os.environ[TRACE_ENV])


def build(cls: type[T], data: Any, *, key: str = "", file: str | Path | None = None,
          lines: Mapping[str, int] | None = None) -> T:
    """Build dataclass ``cls`` from ``data`` strictly (see module docstring)."""
    return _convert(cls, data, key, _Lines(str(file) if file else None, lines))


def _fail(ctx: _Lines, key: str, message: str, **kw: Any) -> typing.NoReturn:
    raise ConfigError(message, file=ctx.file, line=ctx.at(key), field=key or "<root>", **kw)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, ctx: _Lines) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key, ctx)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, ctx)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        _fail(ctx, key, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed if a == value):
            _fail(ctx, key, f"invalid value {value!r}", allowed=allowed)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            _fail(ctx, key, f"expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                _fail(ctx, key, f"expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{key}[{i}]", ctx) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{key}[{i}]", ctx) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            _fail(ctx, key, f"expected a mapping, got {value!r}")
        ktp, vtp = get_args(tp) or (str, Any)
        out = {}
        for k, v in value.items():
            if ktp is str and isinstance(k, (int, float)) and not isinstance(k, bool):
                k = str(k)  # YAML reads `1: person` with an int key; category ids are names here
            out[_convert(ktp, k, f"{key}.{k}", ctx)] = _convert(vtp, v, f"{key}.{k}", ctx)
        return out
    if tp is float:
        if isinstance(value, bool):
            _fail(ctx, key, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and _FLOAT_STRING.match(value.strip()):
            return float(value)
        _fail(ctx, key, f"expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            _fail(ctx, key, f"expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            _fail(ctx, key, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            _fail(ctx, key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # programming error


def _convert_dataclass(cls: Any, value: Any, key: str, ctx: _Lines) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        _fail(ctx, key, f"expected a mapping, got {value!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for name, raw in value.items():
        sub = f"{key}.{name}" if key else str(name)
        if name not in fields:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            _fail(ctx, sub, "unknown key", allowed=sorted(fields),
                  hint=f"did you mean '{close[0]}'?" if close else None)
        kwargs[name] = _convert(hints[name], raw, sub, ctx)
    try:
        obj = (_traced_class(cls) if _trace is not None else cls)(**kwargs)
    except (TypeError, ValueError) as exc:
        _fail(ctx, key, str(exc))
    if _trace is not None:
        object.__setattr__(obj, "_trace_key", key)
    check = getattr(obj, "validate", None)
    if callable(check):
        with untraced():
            problem = check()
        if problem:
            field, message = problem if isinstance(problem, tuple) else ("", problem)
            _fail(ctx, f"{key}.{field}" if key and field else (field or key), message)
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (for checkpoints and logs)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def field_paths(cls: Any, prefix: str = "") -> list[str]:
    """Every leaf key path a dataclass accepts (dict-typed fields count as leaves)."""
    out: list[str] = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        path = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(field_paths(tp, path))
        else:
            out.append(path)
    return out
