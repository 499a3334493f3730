{#- The quality marts' enforced contracts. See docs/dbt.md, "Contracts". -#}

{% macro assert_mart_contract() -%}
    {#- pre-hook of the quality marts (dbt_project.yml). dbt checks an enforced
        contract inside its own materializations (table, view, incremental call
        get_assert_columns_equivalent); audited_periods is not one of them, so
        this hook does it: the columns of what audited_periods writes (the
        mart's SQL plus the provenance columns of with_provenance) against the
        model's YAML, names and types. It runs after the plan and before the
        first period is written: a renamed or retyped column fails the model
        with dbt's contract error, and the build publishes nothing. -#}
    {%- if execute and config.get('contract').enforced -%}
        {%- do get_assert_columns_equivalent(with_provenance(sql | replace(period_placeholder(), 'false'), [])) -%}
    {%- endif -%}
{%- endmacro %}
