{% test columns_between(model, columns, min_value=none, max_value=none) %}
{#- Each of `columns` lies within [min_value, max_value] where not NULL; a bound
    left out is not checked. -#}
{%- set checks = [] -%}
{%- for column in columns -%}
    {%- if min_value is not none -%}{%- do checks.append(column ~ ' < ' ~ min_value) -%}{%- endif -%}
    {%- if max_value is not none -%}{%- do checks.append(column ~ ' > ' ~ max_value) -%}{%- endif -%}
{%- endfor %}
{%- if not checks -%}
    {{ exceptions.raise_compiler_error("columns_between: give min_value, max_value or both") }}
{%- endif %}
select *
from {{ model }}
where {{ checks | join('\n    or ') }}
{% endtest %}
