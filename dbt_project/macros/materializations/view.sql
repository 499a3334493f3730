{#- Views that are re-created only when they change. See docs/dbt.md, "A no-op build re-creates no view". -#}

{% materialization view, adapter='duckdb' %}
    {#- dbt's own view materialization, skipped when the view exists in dbt's
        working database and what it depends on is what it was last built
        with (view_fingerprint; recorded on-run-end, record_view_fingerprints).
        A no-op build then re-creates none of the 24 staging and score views,
        re-checks none of their contracts and writes none of their comments:
        about 0.3 s of node time each (docs/performance.md). --full-refresh, a
        changed model, a changed cache file list (staging), a changed parent,
        or a missing view builds as dbt always does. -#}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is not none and existing.is_view and not should_full_refresh()
          and view_fingerprint(sql, model) in recorded_view_fingerprints(this) -%}
        {%- call noop_statement('main', 'unchanged') -%}
            -- {{ this }}: unchanged since its last build
        {%- endcall -%}
        {{- return({'relations': [this.incorporate(type='view')]}) -}}
    {%- endif -%}
    {{- return(dbt.materialization_view_default()) -}}
{% endmaterialization %}


{% macro view_fingerprint(compiled_sql, node) -%}
    {#- What a built view depends on: its SQL, the comments persist_docs writes,
        the column types its enforced contract checks (a type changed in the
        YAML alone must rebuild the view, so that the contract is checked
        again), and each parent's file and declared column types (a seed's
        edited CSV or a mart's changed contract can change the view's column
        types with the same SQL). -#}
    {%- set parts = [compiled_sql, node.description or '', node.config.contract.enforced | string] -%}
    {%- for name in node.columns | sort -%}
        {%- set column = node.columns[name] -%}
        {%- do parts.append(name ~ ' ' ~ (column.data_type or '') ~ ': ' ~ (column.description or '')) -%}
    {%- endfor -%}
    {%- for parent in node.depends_on.nodes | sort if parent in graph.nodes -%}
        {%- set p = graph.nodes[parent] -%}
        {%- do parts.append(parent ~ ' ' ~ p.checksum.checksum) -%}
        {%- for name in p.columns | sort -%}
            {%- do parts.append(parent ~ '.' ~ name ~ ' ' ~ (p.columns[name].data_type or '')) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(local_md5(parts | join('\n'))) -}}
{%- endmacro %}


{% macro recorded_view_fingerprints(relation) -%}
    {#- The fingerprints recorded for `relation` (none before its first recorded build). -#}
    {%- set store = adapter.get_relation(database=relation.database, schema='iqb_state',
                                         identifier='view_fingerprints') -%}
    {%- if store is none -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set query -%}
        select fingerprint from {{ store }} where relation = '{{ relation.schema }}.{{ relation.identifier }}'
    {%- endset -%}
    {{- return(run_query(query).columns[0].values() | list) -}}
{%- endmacro %}


{% macro record_view_fingerprints(results) -%}
    {#- on-run-end: the fingerprint of every view this run built or found
        unchanged, whether or not the build is published (the view exists in
        dbt's working database either way). One statement after the nodes, so
        that dbt's two threads never write the table at once. -#}
    {%- set rows = [] -%}
    {%- for r in results if r.node.resource_type == 'model' and r.node.config.materialized == 'view'
                            and r.status == 'success' -%}
        {%- do rows.append("('" ~ r.node.schema ~ "." ~ r.node.alias ~ "', '"
                           ~ view_fingerprint(r.node.compiled_code, r.node) ~ "')") -%}
    {%- endfor -%}
    {%- if rows -%}
        {%- do run_query("create schema if not exists iqb_state; "
            ~ "create table if not exists iqb_state.view_fingerprints (relation varchar primary key, fingerprint varchar); "
            ~ "insert or replace into iqb_state.view_fingerprints values " ~ rows | join(', ')) -%}
    {%- endif -%}
{%- endmacro %}
