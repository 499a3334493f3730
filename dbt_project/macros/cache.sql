{#- Reading the Parquet cache (see models/staging/__sources.yml). Paths come from
    the plugin extract/transform/dbt_plugin.py: absolute, and only readable entries. -#}

{% macro iqb_call(function, args=[]) -%}
    {#- One iqb_* function of the plugin (returns JSON), decoded. -#}
    {%- set sql_args = [] -%}
    {%- for arg in args -%}
        {%- if arg is string -%}
            {%- do sql_args.append(sql_string(arg)) -%}
        {%- elif arg is sameas true or arg is sameas false -%}
            {%- do sql_args.append('true' if arg else 'false') -%}
        {%- else -%}
            {%- do sql_args.append(arg | string) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set result = run_query('select ' ~ function ~ '(' ~ sql_args | join(', ') ~ ')') -%}
    {{- return(fromjson(result.columns[0].values()[0])) -}}
{%- endmacro %}


{% macro sql_string(text) -%}
    {#- A SQL string literal: paths may hold quotes, braces or spaces. -#}
    {{- return("'" ~ (text | replace("'", "''")) ~ "'") -}}
{%- endmacro %}


{% macro sql_string_list(texts) -%}
    {%- set quoted = [] -%}
    {%- for text in texts -%}{%- do quoted.append(sql_string(text)) -%}{%- endfor -%}
    {{- return('[' ~ quoted | join(', ') ~ ']') -}}
{%- endmacro %}


{% macro cache_period(path_column, bound, pattern=none) -%}
    {#- period_start / period_end (DATE) from a cache path
        .../cache/v1/{start:%Y%m%dT000000Z}/{end:%Y%m%dT000000Z}/{dataset}/data.parquet;
        the pattern is the cache layout's (extract/cache/layout.py, via the plugin;
        `pattern`: already asked for, a query fewer per call). DuckDB evaluates
        this on file names alone, so a filter on the period prunes whole files
        before they are opened. -#}
    {%- set group = {'start': 1, 'end': 2}[bound] -%}
    {%- set pattern = pattern or iqb_call('iqb_paths')['cache_period_regex'] -%}
    cast(strptime(regexp_extract({{ path_column }}, {{ sql_string(pattern) }}, {{ group }}), '%Y%m%d') as date)
{%- endmacro %}


{% macro cache_source(dataset, files=none) -%}
    {#- The readable files of a dataset (data file matching its stats.json,
        extract/cache/catalog.py), as one relation; an empty relation of the
        same columns and types when there is none yet: one missing dataset must
        not break the build of the others. The column types come from the
        source's declaration in __sources.yml (generated from extract/datasets.py).
        `files`: these files only (one period's, from audited_periods' plan). -#}
    {%- set relation = source('iqb_cache', dataset) -%}
    {%- set given = files is not none -%}
    {%- if not given -%}
        {%- set files = iqb_call('iqb_cache_files', [dataset]) if execute else [] -%}
    {%- endif -%}
    {%- if execute and not files and not given -%}
        {%- do log("iqb: no readable entry of " ~ dataset ~ " in the cache; reading it as empty", info=true) -%}
    {%- endif -%}
    {%- if not execute -%}
        {{ relation }}
    {%- elif files -%}
        read_parquet({{ sql_string_list(files) }}, filename = true)
    {%- else -%}
        {%- set node = graph.sources['source.' ~ project_name ~ '.iqb_cache.' ~ dataset] -%}
        (
            select
            {%- for column in node.columns.values() %}
                cast(null as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
            {%- endfor %}
            where false
        )
    {%- endif -%}
{%- endmacro %}


{% macro stage_dataset(dataset, files=none, pattern=none) -%}
    {#- A staging model: the dataset's rows renamed and typed, the period taken
        from the file path. The columns and types are the source's declaration in
        __sources.yml (generated from extract/datasets.py), so each stg_ model
        is one line. One select straight over the files: DuckDB then pushes a
        filter on the period down to the file names and skips the other periods.
        `files`: the same select over these files only (audited_periods, one
        period: DuckDB's filter on file names costs ~1 ms per file and scan), with
        the cache path `pattern` it asked the plugin for once. -#}
    {%- set relation = cache_source(dataset, files) -%}
    {%- if not execute -%}
        select * from {{ relation }}
    {%- else -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.iqb_cache.' ~ dataset] -%}
    {%- set columns = node.columns.values() | rejectattr('name', 'equalto', 'filename') | list %}
select
    {%- set pattern = pattern or iqb_call('iqb_paths')['cache_period_regex'] %}
    {{ cache_period('filename', 'start', pattern) }} as period_start,
    {{ cache_period('filename', 'end', pattern) }} as period_end,
    {%- for column in columns %}
    cast({{ column.name }} as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ relation }}
    {%- endif -%}
{%- endmacro %}


{% macro iqb_paths() -%}
    {#- `dbt run-operation iqb_paths`: where this profile's database and the
        artifacts tree are, as extract/paths.py names them (one line of JSON;
        `target_path` is the profile's own `path`, as dbt got it). -#}
    {%- set paths = iqb_call('iqb_paths') -%}
    {%- do paths.update({'target_path': target.path}) -%}
    {%- do print(tojson(paths)) -%}
{%- endmacro %}
