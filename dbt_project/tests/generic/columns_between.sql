{% test columns_between(model, columns, min_value, max_value) %}
{#- Each of `columns` lies within [min_value, max_value] where not NULL. -#}
select *
from {{ model }}
where
{%- for column in columns %}
    {{ "or " if not loop.first }}{{ column }} not between {{ min_value }} and {{ max_value }}
{%- endfor %}
{% endtest %}
