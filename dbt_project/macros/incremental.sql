{#- Incremental by period: a mart (re)processes whole periods only. See docs/dbt.md. -#}

{% macro periods_to_process(relations) -%}
    {#- The periods (start, end) a mart must (re)build in this run, as a list of
        pairs of ISO dates, or none for "all of them" (first build, full
        refresh, unit tests). A period is processed when it is in the cache but
        not yet in the mart, or when the mart holds it from a build with another
        min_sample_count. Listing periods reads only file names and Parquet
        footers, never the data of the months already built. -#}
    {%- if not execute or not is_incremental() -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set query -%}
        (
        {%- for relation in relations %}
            select distinct period_start, period_end from {{ relation }}
            {{- "\n            union" if not loop.last }}
        {%- endfor %}
        )
        except
        select distinct period_start, period_end
        from {{ this }}
        where min_sample_count = {{ min_sample_count() }}
        order by period_start, period_end
    {%- endset -%}
    {%- set periods = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- do periods.append((row[0] | string, row[1] | string)) -%}
    {%- endfor -%}
    {%- do log(this.identifier ~ ": " ~ (periods | length) ~ " period(s) to process " ~ periods | map('join', '..') | list, info=true) -%}
    {{- return(periods) -}}
{%- endmacro %}


{% macro period_filter(periods) -%}
    {#- A WHERE condition selecting `periods` (see periods_to_process). It
        compares the period columns with constants, which DuckDB pushes down to
        the file names of the cache: files of other periods are not opened. -#}
    {%- if periods is none -%}
        true
    {%- elif periods | length == 0 -%}
        false
    {%- else -%}
        (
        {%- for start, end in periods %}
            {{ "or " if not loop.first }}(period_start = date '{{ start }}' and period_end = date '{{ end }}')
        {%- endfor %}
        )
    {%- endif -%}
{%- endmacro %}


{% macro min_sample_count() -%}
    {#- The var min_sample_count, checked: a non-negative integer. -#}
    {%- set value = var('min_sample_count', 100) -%}
    {%- if value is not number or value < 0 or value != value | int -%}
        {{ exceptions.raise_compiler_error("var min_sample_count must be a non-negative integer, got " ~ value) }}
    {%- endif -%}
    {{- return(value | int) -}}
{%- endmacro %}


{% macro loaded_at() -%}
    {#- This run's start (UTC), stored on every row a run writes. -#}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}
