"""The transform stage's Python: what dbt calls to read the cache and publish the marts.

``dbt_plugin`` is loaded by ``profiles/profiles.yml`` (dbt-duckdb plugin); ``marts``
plans, stages and publishes the marts' Parquet files (docs/dbt.md, "Write-audit-publish").
"""
