"""Upstream m-lab/iqb's calculator over quality rows: any config, any percentile, no rebuild.

The database's scores (``iqb_scores_by_<level>``) are fixed by the seeds when
``dbt build`` runs. A researcher who wants other thresholds or weights hands
:func:`parse_config` upstream's own config: its nested dict (``"use cases"``
-> name -> ``"w"`` and ``"network requirements"`` -> requirement -> ``"w"``,
``"threshold min"``, ``"datasets"`` -> ``"m-lab"`` -> ``"w"``), or a YAML or
JSON file of that shape; :func:`score` then scores quality rows (the marts'
``download_pX`` .. ``loss_pX``) as upstream's calculator would with it:

    requirement   1 if value > threshold (throughput) or value < threshold
                  (latency, loss), strictly; else 0
    use case      sum(requirement * w) / sum(w), in the config's order
    IQB           sum(use case * w) / sum(w)

The data here are M-Lab's only, so a requirement's agreement score across
datasets is its M-Lab pass (upstream skips datasets without data). Rows that
the database would not score (too few tests, not a country, invalid values)
are not scored here either, and ``score_status`` says why, as in SQL; a
requirement or use case of weight 0 needs no value, as in SQL.

:func:`config_from_seeds` writes the workspace's own config (the seeds
``iqb_requirements`` and ``iqb_use_cases``) in upstream's shape, so a
researcher starts from the numbers the database was scored with: scoring with
it gives the database's scores bit for bit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from extract.datasets import PERCENTILES

# requirement -> (metric of the marts, whether a value passes above the threshold)
REQUIREMENTS: dict[str, tuple[str, bool]] = {
    "download_throughput_mbps": ("download", True),
    "upload_throughput_mbps": ("upload", True),
    "latency_ms": ("latency", False),
    "packet_loss": ("loss", False),
}

DATASET = "m-lab"  # upstream's name for the only dataset these marts hold
# Upstream's other datasets: weighted in its config, absent from these data (skipped).
OTHER_DATASETS = ("cloudflare", "ookla")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]*$")


class ConfigError(ValueError):
    """A config that cannot be scored; the message names the use case and requirement."""


@dataclass(frozen=True)
class Requirement:
    name: str  # one of REQUIREMENTS
    weight: float
    threshold: float


@dataclass(frozen=True)
class UseCase:
    name: str  # as the config spells it ("web browsing")
    column: str  # its score column's stem ("web_browsing")
    weight: float
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class Config:
    use_cases: tuple[UseCase, ...]


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key!r} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {key!r} must be finite, not {value!r}")
    return value


def _weight(node: Mapping[str, Any], where: str) -> float:
    if "w" not in node:
        raise ConfigError(f"{where}: no weight 'w'")
    w = _number(node["w"], where, "w")
    if w < 0:
        raise ConfigError(f"{where}: weight 'w' is negative ({w})")
    return w


def _mapping(node: Any, where: str, key: str) -> Mapping[str, Any]:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{where}: {key!r} must be a mapping, not {type(node).__name__}")
    return node


def load_config_file(path: Path) -> Any:
    """The nested dict of a YAML or JSON file (YAML reads JSON too)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"config {path} is not valid {path.suffix[1:] or 'YAML'}: {first}"
        ) from None


def parse_config(config: Mapping[str, Any] | str | Path) -> Config:
    """Upstream's config (dict, or path of a YAML or JSON file), checked whole."""
    origin = ""
    if isinstance(config, str | Path):
        origin = f"config {config}: "
        config = load_config_file(Path(config))
    try:
        return _parse(config)
    except ConfigError as exc:
        raise ConfigError(origin + str(exc)) from None


def _parse(config: Any) -> Config:
    top = _mapping(config, "config", "config")
    if "use cases" not in top:
        raise ConfigError("config has no 'use cases' (upstream's shape: {'use cases': {...}})")
    use_cases = []
    columns: dict[str, str] = {}
    for uc_name, uc in _mapping(top["use cases"], "config", "use cases").items():
        use_case = _use_case(uc_name, uc)
        if use_case.column in columns:
            raise ConfigError(
                f"use case {uc_name!r} and {columns[use_case.column]!r} both give the column "
                f"{use_case.column}_score"
            )
        columns[use_case.column] = uc_name
        use_cases.append(use_case)
    if not use_cases or sum(u.weight for u in use_cases) == 0:
        raise ConfigError("config: every use case has weight 0 (or none is given)")
    return Config(tuple(use_cases))


def _use_case(uc_name: Any, uc: Any) -> UseCase:
    where = f"use case {uc_name!r}"
    if not isinstance(uc_name, str) or not _NAME.match(uc_name):
        raise ConfigError(f"{where}: a name of letters, digits, spaces, '-' or '_'")
    column = re.sub(r"[ -]+", "_", uc_name.strip()).lower()
    uc = _mapping(uc, where, uc_name)
    weight = _weight(uc, where)
    if "network requirements" not in uc:
        raise ConfigError(f"{where}: no 'network requirements'")
    requirements = [
        _requirement(f"{where}, requirement {nr_name!r}", nr_name, nr)
        for nr_name, nr in _mapping(
            uc["network requirements"], where, "network requirements"
        ).items()
    ]
    if not requirements or sum(r.weight for r in requirements) == 0:
        raise ConfigError(f"{where}: every requirement has weight 0 (or none is given)")
    return UseCase(uc_name, column, weight, tuple(requirements))


def _requirement(nr_where: str, nr_name: Any, nr: Any) -> Requirement:
    if nr_name not in REQUIREMENTS:
        raise ConfigError(f"{nr_where}: not one of {', '.join(REQUIREMENTS)}")
    nr = _mapping(nr, nr_where, nr_name)
    if "threshold min" not in nr:
        raise ConfigError(f"{nr_where}: no 'threshold min'")
    threshold = _number(nr["threshold min"], nr_where, "threshold min")
    if "datasets" not in nr:
        raise ConfigError(f"{nr_where}: no 'datasets' (e.g. {{'m-lab': {{'w': 1}}}})")
    datasets = _mapping(nr["datasets"], nr_where, "datasets")
    if datasets.get(DATASET) is None:
        raise ConfigError(
            f"{nr_where}: 'datasets' has no {DATASET!r}, the only data here: upstream's "
            "calculator would divide by zero"
        )
    for ds_name, ds in datasets.items():
        ds_weight = _weight(_mapping(ds, nr_where, ds_name), f"{nr_where}, dataset {ds_name!r}")
        if ds_name == DATASET and ds_weight == 0:
            raise ConfigError(
                f"{nr_where}: dataset {DATASET!r} has weight 0, and the data here are "
                "M-Lab's only: upstream's calculator would divide by zero (give the "
                "requirement 'w' 0 to leave it out)"
            )
    return Requirement(nr_name, _weight(nr, nr_where), threshold)


def score(rows: pd.DataFrame, config: Config, percentile: int) -> pd.DataFrame:
    """The use-case scores, ``iqb_score`` and ``score_status`` of quality rows at pX.

    ``rows`` has the marts' columns (``meets_min_samples``, ``is_known_country``,
    ``has_invalid_values`` and ``<metric>_p<percentile>``). The arithmetic is
    upstream's, in the config's order, so integer weights give the database's
    numbers bit for bit.
    """
    if percentile not in PERCENTILES:
        raise ConfigError(f"percentile {percentile!r}: one of {', '.join(map(str, PERCENTILES))}")
    eligible = (
        rows["meets_min_samples"].fillna(False).astype(bool)
        & rows["is_known_country"].fillna(False).astype(bool)
        & ~rows["has_invalid_values"].fillna(True).astype(bool)
    ).to_numpy()
    out = pd.DataFrame(index=rows.index)
    iqb_total = np.zeros(len(rows))
    for uc in config.use_cases:
        total = np.zeros(len(rows))
        for req in uc.requirements:
            if req.weight == 0:
                continue  # counts 0 and needs no value (upstream adds 0 * its pass)
            metric, above = REQUIREMENTS[req.name]
            values = rows[f"{metric}_p{percentile}"].to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                passed = values > req.threshold if above else values < req.threshold
            ras = np.where(np.isnan(values), np.nan, passed.astype(float))
            total = total + ras * req.weight
        use_case = total / sum(r.weight for r in uc.requirements)
        use_case = np.where(eligible, use_case, np.nan)
        out[f"{uc.column}_score"] = use_case
        if uc.weight != 0:
            iqb_total = iqb_total + use_case * uc.weight
    iqb = np.where(eligible, iqb_total / sum(u.weight for u in config.use_cases), np.nan)
    out["iqb_score"] = iqb
    status = np.select(
        [
            ~rows["is_known_country"].fillna(False).astype(bool).to_numpy(),
            rows["has_invalid_values"].fillna(True).astype(bool).to_numpy(),
            ~rows["meets_min_samples"].fillna(False).astype(bool).to_numpy(),
            np.isnan(iqb),
        ],
        ["unknown_country", "invalid_values", "too_few_samples", "missing_values"],
        default="scored",
    )
    out["score_status"] = status
    return out


def _plain(value: float) -> int | float:
    """A seed's number as the config shows it: 3, not 3.0."""
    return int(value) if float(value).is_integer() else float(value)


def config_from_seeds(
    requirements: list[tuple[str, str, float, float]], use_cases: list[tuple[str, float]]
) -> dict[str, Any]:
    """Upstream's nested dict from the seeds' rows: (use_case, requirement, weight,
    threshold) and (use_case, weight), in the seeds' order. A requirement absent
    from the seed counts 0 in the database; it is left out here, which counts 0 too."""
    config: dict[str, Any] = {"use cases": {}}
    for name, weight in use_cases:
        config["use cases"][name.replace("_", " ")] = {
            "w": _plain(weight),
            "network requirements": {
                requirement: {
                    "w": _plain(w),
                    "threshold min": _plain(threshold),
                    "datasets": {
                        DATASET: {"w": 1},
                        **{other: {"w": 0} for other in OTHER_DATASETS},
                    },
                }
                for uc, requirement, w, threshold in requirements
                if uc == name
            },
        }
    return config


def dump_config(config: Mapping[str, Any], fmt: str) -> str:
    """The config as YAML or JSON text, keys in their order."""
    if fmt == "json":
        return json.dumps(config, indent=2) + "\n"
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
