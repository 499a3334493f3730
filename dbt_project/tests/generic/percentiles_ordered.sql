{% test percentiles_ordered(model, metric, order) %}
{#- The percentiles of `metric` move one way from p1 to p99:
    order='non_decreasing' for throughput (higher is better, standard labels),
    order='non_increasing' for latency and loss (lower is better, labels
    inverted by the polarity convention of DESIGN.md). -#}
{%- if order not in ('non_decreasing', 'non_increasing') -%}
    {{ exceptions.raise_compiler_error("percentiles_ordered: order must be non_decreasing or non_increasing, not " ~ order) }}
{%- endif -%}
{%- set op = '>' if order == 'non_decreasing' else '<' -%}
{%- set columns = percentile_columns(metric) -%}
select *
from {{ model }}
where
    not has_invalid_values  -- NaN / inf / out of range: flagged and reported, not ordered
    and (
    {%- for i in range(columns | length - 1) %}
        {{ "or " if not loop.first }}{{ columns[i] }} {{ op }} {{ columns[i + 1] }}
    {%- endfor %}
    )
{% endtest %}
