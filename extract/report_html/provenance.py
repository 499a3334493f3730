"""Is a period synthetic or real? One small function, so it can be simplified later.

When the marts carry an ``is_synthetic`` column (per-period provenance written
by the build), that column is the answer. Until then the data tell: the
synthetic sample (``iqb sample``) names its places and networks so
("Synthetic Region 1 of ZA", "SYNTHETIC-AS4200...") and uses private-use AS
numbers, and a cache entry's stats.json may say ``source.kind``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from extract.cache.layout import CACHE_VERSION_DIR, stamp
from extract.sample.generate import SYNTHETIC_ASN_BASE


@dataclass(frozen=True)
class PeriodSource:
    start: date
    end: date
    synthetic: bool
    evidence: str  # one line a reader can check


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'main' and table_name = ?", [relation]).fetchall()}


def period_sources(con: duckdb.DuckDBPyConnection, artifacts: Path) -> list[PeriodSource]:
    """Every period of ``quality_by_country``, oldest first, with synthetic or real."""
    if "is_synthetic" in _columns(con, "quality_by_country"):
        rows = con.execute(
            "select period_start, period_end, bool_or(is_synthetic) from quality_by_country "
            "group by all order by 1, 2").fetchall()
        return [PeriodSource(s, e, bool(syn), "is_synthetic column of the marts")
                for s, e, syn in rows]
    synthetic_rows = dict(((s, e), n) for s, e, n in con.execute(
        "select period_start, period_end, count(*) from quality_by_country_asn "
        "where as_name like 'SYNTHETIC-AS%' or asn >= ? group by all",
        [SYNTHETIC_ASN_BASE]).fetchall())
    synthetic_rows.update(((s, e), n + synthetic_rows.get((s, e), 0)) for s, e, n in con.execute(
        "select period_start, period_end, count(*) from quality_by_subdivision1 "
        "where subdivision1_name like 'Synthetic Region %' group by all").fetchall())
    out = []
    for s, e in con.execute("select distinct period_start, period_end from quality_by_country "
                            "order by 1, 2").fetchall():
        kind = _stats_kind(artifacts, s, e)
        if kind is not None:
            out.append(PeriodSource(s, e, kind == "synthetic",
                                    f"stats.json source.kind = {kind}"))
        elif synthetic_rows.get((s, e)):
            out.append(PeriodSource(s, e, True, f"{synthetic_rows[(s, e)]:,} places or networks "
                                    "named by the synthetic sample (iqb sample)"))
        else:
            out.append(PeriodSource(s, e, False, "no synthetic place or network names"))
    return out


def _stats_kind(artifacts: Path, start: date, end: date) -> str | None:
    """``source.kind`` of the period's downloads_by_country stats.json, if it says."""
    path = (artifacts / CACHE_VERSION_DIR / stamp(start) / stamp(end) / "downloads_by_country"
            / "stats.json")
    try:
        source = json.loads(path.read_text()).get("source")
    except (OSError, ValueError, AttributeError):
        return None
    kind = source.get("kind") if isinstance(source, dict) else None
    return str(kind) if kind else None
