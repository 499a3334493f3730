{#- Building a mart period by period. See docs/dbt.md, "Write-audit-publish". -#}

{% macro period_placeholder() -%}
    {#- Where the quality marts select their input rows. The materialization
        audited_periods replaces it with one period's condition (a constant
        filter that DuckDB pushes down to the cache's file names); anywhere else
        (unit tests, dbt compile) it selects everything. -#}
    /* iqb: one period */ true
{%- endmacro %}


{% macro period_filter(periods) -%}
    {#- A WHERE condition selecting `periods`, a list of (start, end) ISO dates.
        It compares the period columns with constants, which DuckDB pushes down
        to the file names: files of other periods are not opened. -#}
    {%- if periods | length == 0 -%}
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
    {{- return(non_negative_var('min_sample_count')) -}}
{%- endmacro %}


{% macro period_batch_bytes() -%}
    {{- return(non_negative_var('period_batch_bytes')) -}}
{%- endmacro %}


{% macro non_negative_var(name) -%}
    {#- A var that must be a non-negative integer, checked (its default: the
        vars of dbt_project.yml, its one home). -#}
    {%- set value = var(name) -%}
    {%- if value is not number or value < 0 or value != value | int -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a non-negative integer, got " ~ value) }}
    {%- endif -%}
    {{- return(value | int) -}}
{%- endmacro %}


{% macro loaded_at() -%}
    {#- This run's start (UTC), stored on every row a run writes. -#}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{% macro tested_model_name() -%}
    {#- The name of the model the running data test is attached to (the test's
        own `model` argument is the relation, possibly wrapped in a subquery). -#}
    {{- return(model.attached_node.split('.')[-1] if execute and model.attached_node else 'model') -}}
{%- endmacro %}


{% macro tested_model_unique_key() -%}
    {#- The config unique_key of the model the running data test is attached to:
        the columns that name one of its rows in a failure message. -#}
    {%- set node = graph.nodes.get(model.attached_node) if execute and model.attached_node else none -%}
    {%- set key = node.config.get('unique_key') if node else none -%}
    {%- if execute and not key -%}
        {{ exceptions.raise_compiler_error(
            tested_model_name() ~ ": row_checks needs `unique` or the model's config unique_key") }}
    {%- endif -%}
    {{- return(key or []) -}}
{%- endmacro %}
