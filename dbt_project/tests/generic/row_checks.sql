{% test row_checks(model, unique=none, not_null=[], percentiles=[], between=none, accepted=none, scores=false) %}
{#- Every check of a mart, score view or seed in one scan (docs/dbt.md, "Tests"):

    - unique: no two rows share these columns (seeds). A quality mart's grain,
      its config unique_key, is checked period by period as each file is
      written (macros/materializations/audited_periods.sql), so that memory
      stays one period's whatever the history; a score view has one row per
      mart row by construction. Without `unique`, example keys are the tested
      model's unique_key;
    - not_null: these columns are never NULL;
    - percentiles: for each metric, every <metric>_pX >= 0 (loss also <= 1),
      throughput non-decreasing from p1 to p99, latency and loss non-increasing
      (the polarity convention); rows flagged has_invalid_values are left out
      (they are kept, not scored, and named by the build);
    - between: {columns: [...], min_value: a, max_value: b} where not NULL;
    - scores: when true, every <use_case>_score (the use cases of the seed
      iqb_use_cases, macro iqb_use_cases()) and iqb_score within [0, 1] where
      not NULL: a score view's YAML need not list the use cases, so a new one
      is tested as soon as its seed row and generate.py add its column;
    - accepted: {column: [values]}.

    When any check fails the test stops with one message that names the mart,
    each failing check, its number of rows and up to three example keys (DuckDB's
    error()). The row checks filter first (example keys only for failing rows);
    uniqueness is a GROUP BY over a hash of the keys (the keys themselves only
    for repeated hashes); this is what makes a build's tests cheap
    (docs/performance.md). -#}
{%- set key = unique or tested_model_unique_key() -%}
{%- set checks = [] -%}
{%- for column in not_null -%}
    {%- do checks.append(('not_null(' ~ column ~ ')', column ~ ' is null')) -%}
{%- endfor -%}
{%- for metric in percentiles -%}
    {%- set columns = percentile_columns(metric) -%}
    {%- set below = [] -%}
    {%- for column in columns -%}
        {%- do below.append(column ~ ' < 0' ~ (' or ' ~ column ~ ' > 1' if metric == 'loss' else '')) -%}
    {%- endfor -%}
    {%- do checks.append((metric ~ ' percentiles within ' ~ ('[0, 1]' if metric == 'loss' else '[0, inf)'),
                          'not has_invalid_values and (' ~ below | join(' or ') ~ ')')) -%}
    {%- set op = '>' if metric in ('download', 'upload') else '<' -%}
    {%- set steps = [] -%}
    {%- for i in range(columns | length - 1) -%}
        {%- do steps.append(columns[i] ~ ' ' ~ op ~ ' ' ~ columns[i + 1]) -%}
    {%- endfor -%}
    {%- do checks.append((metric ~ ' percentiles ' ~ ('non-decreasing' if op == '>' else 'non-increasing')
                          ~ ' from p1 to p99',
                          'not has_invalid_values and (' ~ steps | join(' or ') ~ ')')) -%}
{%- endfor -%}
{%- if between -%}
    {%- for column in between['columns'] -%}
        {%- set bounds = [] -%}
        {%- if between.get('min_value') is not none -%}
            {%- do bounds.append(column ~ ' < ' ~ between['min_value']) -%}
        {%- endif -%}
        {%- if between.get('max_value') is not none -%}
            {%- do bounds.append(column ~ ' > ' ~ between['max_value']) -%}
        {%- endif -%}
        {%- do checks.append((column ~ ' within [' ~ between.get('min_value') ~ ', ' ~ between.get('max_value') ~ ']',
                              bounds | join(' or '))) -%}
    {%- endfor -%}
{%- endif -%}
{%- if scores -%}
    {%- set score_columns = [] -%}
    {%- for use_case in iqb_use_cases() -%}
        {%- do score_columns.append(use_case ~ '_score') -%}
    {%- endfor -%}
    {%- do score_columns.append('iqb_score') -%}
    {%- for column in score_columns -%}
        {%- do checks.append((column ~ ' within [0, 1]', column ~ ' < 0 or ' ~ column ~ ' > 1')) -%}
    {%- endfor -%}
{%- endif -%}
{%- if accepted -%}
    {%- for column, values in accepted.items() -%}
        {%- do checks.append((column ~ ' in (' ~ values | join(', ') ~ ')',
                              column ~ " not in ('" ~ values | join("', '") ~ "')")) -%}
    {%- endfor -%}
{%- endif -%}
{%- set keys = key | join(', ') -%}
{%- set example = "concat_ws(' ', " ~ (key | map('string') | list | join(', ')) ~ ")" -%}

with

-- Rows failing a row check: one scan of the columns the checks read, and the
-- example key is built for these rows only (none, when the mart is sound).
failing as (

    select
        {{ keys }},
        {%- for name, condition in checks %}
        coalesce({{ condition }}, false) as check_{{ loop.index }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ model }}
    where
        {%- for name, condition in checks %}
        {{ "or " if not loop.first }}coalesce({{ condition }}, false)
        {%- else %}
        false
        {%- endfor %}

),

{%- if unique %}
-- Keys held by more than one row (macros/duplicate_keys.sql).
duplicates as (

    {{ duplicate_keys(model, unique) | indent(4) }}

),
{%- endif %}

failures as (

    select
        unnest(list_filter([
        {%- for name, condition in checks %}
            if(check_{{ loop.index }}, '{{ name }}', null){{ "," if not loop.last }}
        {%- endfor %}
        ], check_name -> check_name is not null)) as check_name,
        {{ example }} as example
    from failing

    {%- if unique %}

    union all

    select
        'unique({{ keys }})' as check_name,
        {{ example }} as example
    from duplicates, range(duplicates.n_rows)  -- one line per row, as the row checks count
    {%- endif %}

),

summary as (

    select
        count(*) as failed_checks,
        string_agg(
            check_name || ': ' || n_rows || ' row(s), e.g. ' || array_to_string(examples, ' | '),
            '; ' order by check_name
        ) as message
    from (
        select check_name, count(*) as n_rows, list(distinct example order by example)[1:3] as examples
        from failures
        group by check_name
    )

)

-- error() in the filter, so that dbt's count(*) over this query evaluates it
select message as failure
from summary
where failed_checks > 0 and error('{{ tested_model_name() }} fails: ' || message) is null
{% endtest %}
