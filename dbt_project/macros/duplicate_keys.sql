{% macro duplicate_keys(relation, keys) -%}
    {#- The keys held by more than one row of `relation`, with their number of
        rows (n_rows). First the hashes of the keys held by more than one row
        (an aggregate over one integer: ~40 % cheaper than over the key columns
        themselves, docs/performance.md); then, exactly, the keys of those rows
        alone, so that a hash collision is never reported as a duplicate. Used
        by the row_checks test (seeds) and, one period's file at a time, by
        the audited_periods materialization (quality marts). -#}
    {%- set columns = keys | join(', ') -%}
    select {{ columns }}, count(*) as n_rows
    from {{ relation }}
    where hash({{ columns }}) in (
        select hash({{ columns }}) as key_hash
        from {{ relation }}
        group by key_hash
        having count(*) > 1
    )
    group by {{ columns }}
    having count(*) > 1
{%- endmacro %}
