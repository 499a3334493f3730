{#- Building a mart period by period. See docs/dbt.md, "Write-audit-publish". -#}

{% macro period_placeholder() -%}
    {#- Where the quality marts select their input rows. The materialization
        audited_periods replaces it with the condition of the periods it writes
        (period_filter); anywhere else (unit tests, dbt compile) it selects
        everything. -#}
    /* iqb: one period */ true
{%- endmacro %}


{% macro period_filter(periods) -%}
    {#- A WHERE condition selecting `periods` (the plan's, consecutive, each with
        its ISO `start` and `end`) in a select that reads their own cache files
        only. It compares the period columns with constants: for one period
        DuckDB prunes by them; for several, a range keeps every row read (one
        condition per period was evaluated on every row: 2 s for 64 small
        periods, 0.03 s as a range). -#}
    {%- if periods | length == 1 -%}
        (period_start = date '{{ periods[0]['start'] }}' and period_end = date '{{ periods[0]['end'] }}')
    {%- else -%}
        (period_start between date '{{ periods[0]['start'] }}' and date '{{ periods[-1]['start'] }}')
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
