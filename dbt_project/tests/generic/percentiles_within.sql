{% test percentiles_within(model, metrics, min_value=none, max_value=none) %}
{#- Every <metric>_pX of every row lies within [min_value, max_value]. NULLs pass
    (a place present on one side only has NULLs on the other), and so do rows
    flagged has_invalid_values (kept, not scored, named by the build). -#}
{%- set checks = [] -%}
{%- for metric in metrics -%}
    {%- for column in percentile_columns(metric) -%}
        {%- if min_value is not none -%}{%- do checks.append(column ~ ' < ' ~ min_value) -%}{%- endif -%}
        {%- if max_value is not none -%}{%- do checks.append(column ~ ' > ' ~ max_value) -%}{%- endif -%}
    {%- endfor -%}
{%- endfor %}
select *
from {{ model }}
where
    not has_invalid_values  -- flagged and reported by the build, never scored
    and ({{ checks | join('\n    or ') }})
{% endtest %}
