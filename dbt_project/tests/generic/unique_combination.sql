{% test unique_combination(model, columns) %}
{#- No two rows share the values of `columns` (e.g. period and place keys). -#}
select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
