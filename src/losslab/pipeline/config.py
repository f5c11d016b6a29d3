"""The workflow's configuration: the top-level config, the chosen scale's file, one JSON schema.

``resolve(config, root)`` validates the top-level keys (so that an unknown scale is named before any file is
read), merges ``config/scales/<scale>.yaml`` under the user's keys, validates the whole against
``workflow/schemas/config.schema.yaml`` (JSON Schema draft 2020-12) and returns the merged mapping. Every
error names the key at fault and what is allowed; nothing is ever evaluated as code.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"
SCALES_DIR = Path("config") / "scales"
TOP_LEVEL_KEYS = ("scale", "data_dir", "results", "resources", "logs", "threads", "progress")


RUN_KEYS = ("dataset", "model", "recipe", "lr_search")


class ConfigError(ValueError):
    pass


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; mappings merge key by key, everything else (lists too) replaces."""
    out = copy.deepcopy(dict(base))
    for key, val in override.items():
        if isinstance(val, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _resolve_ref(root: Mapping[str, Any], node: Any) -> Any:
    """``node`` with local ``$ref``s (``#/$defs/...``) followed."""
    while isinstance(node, Mapping) and str(node.get("$ref", "")).startswith("#/"):
        target: Any = root
        for part in str(node["$ref"])[2:].split("/"):
            target = target[part]
        node = target
    return node


def _property_description(error, root: Mapping[str, Any] | None) -> str | None:
    """The deepest ``description`` on the schema path from the key's own schema down to the failing keyword
    (through ``$ref``s): e.g. the grid axis's "[start, stop, number of points]" for its third item."""
    if root is None:
        return None
    node: Any = root
    found = None
    for key in list(error.absolute_schema_path)[:-1]:
        try:
            node = _resolve_ref(root, node[key] if key != "$ref" else node)
        except (KeyError, IndexError, TypeError):
            return found
        if key in ("properties", "additionalProperties", "patternProperties"):
            found = None  # a description above the key's own schema is about its parent
        elif isinstance(node, Mapping) and "description" in node:
            found = node["description"]
    return found


def _describe(error, root: Mapping[str, Any] | None = None) -> str:
    """One line per error: the key path, the value, and what is allowed."""
    schema = error.schema
    msg = error.message
    if error.validator == "minItems":
        msg = f"{error.message}: at least {schema['minItems']} item(s) required"
    elif error.validator == "maxItems":
        msg = f"{error.message}: at most {schema['maxItems']} item(s) allowed"
    elif error.validator == "uniqueItems":
        msg = f"{error.instance!r} repeats an element; the items must be distinct"
    elif error.validator == "enum":
        msg = f"{error.instance!r} is not allowed; allowed values: {schema['enum']}"
    elif error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        msg = f"{error.instance!r} is out of range ({error.validator} {schema[error.validator]})"
    elif error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        msg = f"{error.message}; allowed keys: {allowed}" if allowed else error.message
    if "description" in schema and error.validator != "additionalProperties":
        msg += f" ({schema['description']})"
    elif error.validator != "additionalProperties":
        described = _property_description(error, root)
        if described:
            msg += f" ({described})"
    return f"config key '{_key_path(error)}': {msg}"


def _non_finite(obj: Any, path: tuple = ()) -> list[str]:
    """JSON Schema's numeric checks let NaN through (every comparison with NaN is false): find them here."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return [f"config key '{'.'.join(map(str, path)) or '<top level>'}': {obj!r} is not a finite number "
                f"(NaN and infinity are not allowed)"]
    if isinstance(obj, Mapping):
        return [m for k, v in obj.items() for m in _non_finite(v, (*path, k))]
    if isinstance(obj, (list, tuple)):
        return [m for i, v in enumerate(obj) for m in _non_finite(v, (*path, i))]
    return []


def validate(config: Mapping[str, Any], schema: Mapping[str, Any], source: str = "config") -> None:
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.message))
    lines = [_describe(e, schema) for e in errors] + _non_finite(config)
    if lines:
        raise ConfigError(f"invalid {source}:\n  " + "\n  ".join(lines[:20]))


def resolve(config: Mapping[str, Any], root: str | Path = ".") -> dict[str, Any]:
    """Validate ``config`` (the Snakemake config: config.yaml plus --config), merge the scale file."""
    root = Path(root)
    schema = read_yaml(root / SCHEMA)
    top = {k: v for k, v in config.items() if k in TOP_LEVEL_KEYS}
    validate(top, {**schema, "required": ["scale"], "additionalProperties": True,
                   "properties": {k: schema["properties"][k] for k in TOP_LEVEL_KEYS}})
    scale_file = root / SCALES_DIR / f"{config['scale']}.yaml"
    scale = read_yaml(scale_file) or {}
    if not isinstance(scale, Mapping):
        raise ConfigError(f"{scale_file}: expected a mapping at the top level")
    merged = deep_merge(scale, config)
    source = f"config (config.yaml + {scale_file} + --config)"
    unknown = unknown_experiments(config, scale)
    if unknown:
        raise ConfigError(f"invalid {source}:\n  " + "\n  ".join(unknown))
    validate(merged, schema, source=source)
    return merged


def unknown_experiments(config: Mapping[str, Any], scale: Mapping[str, Any]) -> list[str]:
    """One line per experiment the user's config (config.yaml + --config) names under ``experiments`` that the
    scale file does not define: the user's keys only override the scale's experiments, so such a name is a typo
    (checked before the schema, which would only say that the new experiment lacks its ``dataset``)."""
    given, known = config.get("experiments"), scale.get("experiments")
    if not isinstance(given, Mapping) or not isinstance(known, Mapping):
        return []
    names = ", ".join(sorted(known))
    return [f"config key 'experiments.{name}': unknown experiment {name!r} (known: {names})"
            for name in given if name not in known]


def scale_seeds(root: str | Path = ".") -> dict[str, dict[str, int]]:
    """``scale -> experiment -> number of seeds`` of every scale file (its ``experiments``), for the report's power
    table: how many seeds each scale gives a claim."""
    out = {}
    for path in sorted((Path(root) / SCALES_DIR).glob("*.yaml")):
        exps = (read_yaml(path) or {}).get("experiments", {}) or {}
        out[path.stem] = {name: len(e.get("seeds", [])) for name, e in exps.items() if isinstance(e, Mapping)}
    return out


def run_spec(experiment: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The run spec ``{dataset, model, recipe[, lr_search]}`` of one variant of an experiment: the variant's
    keys merged over the experiment's base."""
    variants = experiment.get("variants", {"default": {}})
    if variant not in variants:
        raise ConfigError(f"unknown variant {variant!r}; this experiment has {sorted(variants)}")
    base = {k: experiment[k] for k in RUN_KEYS if k in experiment}
    return deep_merge(base, variants[variant] or {})
