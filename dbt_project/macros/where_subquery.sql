{#- Data tests of a build test the periods that build wrote. See docs/dbt.md. -#}

{% macro get_where_subquery(relation) -%}
    {#- dbt wraps the relation of every generic data test in this macro (the
        `where` config). Overridden for the placeholder __periods_loaded_by_this_run__
        (dbt_project.yml sets it on the tests of models/marts/): it becomes a
        constant filter on the periods that this invocation wrote into the
        audited_periods mart under the tested model, so that a build that added one
        month tests that month, not every month again.

        `where` is rendered when the project is parsed; the periods are only
        known when the test runs, hence a placeholder replaced here. -#}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__periods_loaded_by_this_run__' in where -%}
        {%- set where = where | replace('__periods_loaded_by_this_run__', periods_loaded_by_this_run()) -%}
    {%- endif -%}
    {%- if where and where | trim != 'true' -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{- return(filtered) -}}
    {%- endif -%}
    {{- return(relation) -}}
{%- endmacro %}


{% macro periods_loaded_by_this_run() -%}
    {#- A condition on period_start/period_end for the running test: `true`
        (every row), unless this invocation rewrote some but not all periods
        of the audited_periods mart the tested model is (or is built on). So:

        - first build, --full-refresh, a new min_sample_count: every row was
          written now, every row is tested;
        - a build that added a month: that month's rows (in the mart, and in
          the score view on top of it) are tested; the other periods were
          tested when they were written, and their files have not changed
          since (a period is only ever replaced whole, by a file written aside);
        - a build that wrote nothing into the mart: the mart's tests read
          nothing (its periods were tested when they were published), the
          score view's tests read every row (the score SQL or seeds may have
          changed);
        - a standalone `dbt test`: every row is tested. -#}
    {%- if not execute -%}
        {{- return('true') -}}
    {%- endif -%}
    {%- set mart = audited_mart_under(model.attached_node) -%}
    {%- if adapter.get_relation(database=mart.database, schema=mart.schema, identifier=mart.alias) is none -%}
        {#- not built yet (`dbt compile` on a new database): nothing to narrow -#}
        {{- return('true') -}}
    {%- endif -%}
    {#- the periods this invocation wrote aside, and the published ones it left:
        two folder listings (extract/transform/marts.py), no row read -#}
    {%- set periods = iqb_call('iqb_staged_periods', [mart.alias, invocation_id]) -%}
    {%- set now, before = periods['now'], periods['before'] -%}
    {%- if not now and flags.WHICH == 'build' and (mart.unique_id == model.attached_node
                                                    or scores_unchanged(model.attached_node)) -%}
        {#- a build that wrote nothing into this mart: its published periods
            passed these tests when they were written, and are not read again;
            nor are the score views' rows, unless their SQL or the seeds changed -#}
        {{- return('false') -}}
    {%- endif -%}
    {%- if not now or not before -%}
        {{- return('true') -}}
    {%- endif -%}
    {{- return(period_filter(now)) -}}
{%- endmacro %}


{% macro audited_mart_under(unique_id) -%}
    {#- The audited_periods model `unique_id` is, or the one audited_periods
        model it selects from (the score views read one quality mart). -#}
    {%- set node = graph.nodes[unique_id] -%}
    {%- if node.config.materialized == 'audited_periods' -%}
        {{- return(node) -}}
    {%- endif -%}
    {%- set marts = [] -%}
    {%- for parent in node.depends_on.nodes -%}
        {%- set parent_node = graph.nodes.get(parent) -%}
        {%- if parent_node and parent_node.config.materialized == 'audited_periods' -%}
            {%- do marts.append(parent_node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if marts | length != 1 -%}
        {{- exceptions.raise_compiler_error(
            "__periods_loaded_by_this_run__: " ~ unique_id ~ " is not an audited_periods model "
            ~ "and does not read exactly one (" ~ marts | map(attribute='name') | join(', ') ~ ")") -}}
    {%- endif -%}
    {{- return(marts[0]) -}}
{%- endmacro %}


{% macro tested_model_name() -%}
    {#- The name of the model the running data test is attached to (the test's
        own `model` argument is the relation, possibly wrapped in a subquery). -#}
    {{- return(model.attached_node.split('.')[-1] if execute and model.attached_node else 'model') -}}
{%- endmacro %}


{% macro scores_unchanged(unique_id) -%}
    {#- True when the score view `unique_id` as built now (schema audit) has the
        published view's SQL and every seed equals its published copy: its
        published rows are then what was tested when they were published. -#}
    {%- set node = graph.nodes[unique_id] -%}
    {%- set published = [] -%}
    {%- for row in run_query("select table_name from information_schema.tables "
                             ~ "where table_catalog = current_database() and table_schema = 'main'").rows -%}
        {%- do published.append(row[0]) -%}
    {%- endfor -%}
    {%- set checks = [same_as_published(node.alias)] -%}
    {%- for seed in graph.nodes.values() if seed.resource_type == 'seed' -%}
        {%- if seed.alias not in published -%}{{- return(false) -}}{%- endif -%}
        {%- do checks.append("(select count(*) = 0 from ((select * from audit." ~ seed.alias
            ~ " except all select * from main." ~ seed.alias ~ ") union all (select * from main."
            ~ seed.alias ~ " except all select * from audit." ~ seed.alias ~ ")))") -%}
    {%- endfor -%}
    {{- return(run_query("select " ~ checks | join(" and ")).columns[0].values()[0]) -}}
{%- endmacro %}


{% macro same_as_published(alias) -%}
    {#- A SQL condition: the view audit.<alias> is the view main.<alias> (what was
        published), compared in DuckDB's text of each without the `CREATE VIEW
        <name> AS` head, schema names aligned. DuckDB writes a view's text anew
        when a file is opened (a CROSS JOIN becomes a comma), so a view created
        in this session never matches: the caller then does the work again. -#}
    {%- set body = "regexp_replace({}.sql, '^CREATE VIEW .*? AS ', '')" -%}
    {{- return("(select count(*) = 1 from duckdb_views() as a join duckdb_views() as m "
        ~ "on m.database_name = a.database_name and m.schema_name = 'main' and m.view_name = a.view_name "
        ~ "and replace(" ~ body.format('a') ~ ", '.audit.', '.main.') = " ~ body.format('m')
        ~ " where a.database_name = current_database() and a.schema_name = 'audit' "
        ~ "and a.view_name = '" ~ alias ~ "')") -}}
{%- endmacro %}
