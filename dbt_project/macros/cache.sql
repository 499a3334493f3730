{#- Reading the Parquet cache (see models/staging/__sources.yml). -#}

{% macro artifacts_root() -%}
    {#- The artifacts root: the directory of the database file (profiles/profiles.yml). -#}
    {{- return(target.path.rsplit('/', 1)[0]) -}}
{%- endmacro %}


{% macro cache_glob(dataset) -%}
    {{- return(artifacts_root() ~ '/cache/v1/*/*/' ~ dataset ~ '/data.parquet') -}}
{%- endmacro %}


{% macro cache_period(path_column, bound) -%}
    {#- period_start / period_end (DATE) from a cache path
        .../cache/v1/{start:%Y%m%dT000000Z}/{end:%Y%m%dT000000Z}/{dataset}/data.parquet.
        DuckDB evaluates this on file names alone, so a filter on the period
        prunes whole files before they are opened. -#}
    {%- set group = {'start': 1, 'end': 2}[bound] -%}
    cast(strptime(regexp_extract({{ path_column }}, 'cache/v1/([0-9]{8})T000000Z/([0-9]{8})T000000Z/', {{ group }}), '%Y%m%d') as date)
{%- endmacro %}


{% macro cache_source(dataset) -%}
    {#- The source relation of a dataset, or an empty relation of the same
        columns and types when the cache holds no file of it yet: read_parquet
        fails on a glob that matches nothing, and one missing dataset must not
        break the build of the others. The column types come from the source's
        declaration in __sources.yml (generated from extract/datasets.py). -#}
    {%- set relation = source('iqb_cache', dataset) -%}
    {%- if execute and not cache_has_files(dataset) -%}
        {%- do log("iqb: no file of " ~ dataset ~ " under " ~ cache_glob(dataset) ~ "; reading it as empty", info=true) -%}
        {%- set node = graph.sources['source.' ~ project_name ~ '.iqb_cache.' ~ dataset] -%}
        (
            select
            {%- for column in node.columns.values() %}
                cast(null as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
            {%- endfor %}
            where false
        )
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}


{% macro cache_has_files(dataset) -%}
    {%- set result = run_query("select count(*) from glob('" ~ cache_glob(dataset) ~ "')") -%}
    {{- return(result.columns[0].values()[0] > 0) -}}
{%- endmacro %}
