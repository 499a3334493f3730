{#- Parquet exports of the marts, for people who do not use DuckDB. -#}

{% macro export_mart() -%}
    {#- Post-hook of a quality mart: write it under <artifacts>/marts/<mart>/
        as one Parquet file per period,
            marts/<mart>/period=<start>_<end>/data_0.parquet
        (a Hive-style directory: pandas, pyarrow, polars, R arrow, Spark and
        DuckDB read the folder as one table; the files themselves carry
        period_start and period_end as dates).

        Incremental like the mart: only the periods this run loaded, and any
        period whose file is missing, are (re)written. When the run rebuilt the
        whole mart (first build, --full-refresh, new min_sample_count) the
        folder is cleared first, so no file of a vanished period survives. -#}
    {%- if not execute -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set marts_dir = artifacts_root() ~ '/marts' -%}
    {%- set mart_dir = marts_dir ~ '/' ~ this.identifier -%}
    {%- set label = "strftime(period_start, '%Y-%m-%d') || '_' || strftime(period_end, '%Y-%m-%d')" -%}
    {%- set rebuilt_all = run_query(
        "select count(*) = 0 from " ~ this ~ " where loaded_at <> " ~ loaded_at()
    ).columns[0].values()[0] -%}
    {#- DuckDB creates the target folder of a partitioned COPY but not its
        parent: an empty partitioned COPY creates <artifacts>/marts. -#}
    copy (select 1 as created, 1 as marts_dir where false)
    to '{{ marts_dir }}' (format parquet, partition_by (created), overwrite_or_ignore true);

    copy (
        select *, {{ label }} as period
        from {{ this }}
        {%- if not rebuilt_all %}
        where
            loaded_at = {{ loaded_at() }}
            or {{ label }} not in (
                select regexp_extract(file, '/period=([^/]+)/[^/]+$', 1)
                from glob('{{ mart_dir }}/*/*.parquet')
            )
        {%- endif %}
    )
    to '{{ mart_dir }}' (
        format parquet,
        partition_by (period),
        {{ 'overwrite true' if rebuilt_all else 'overwrite_or_ignore true' }}
    )
{%- endmacro %}
