{#- The gates around a build: what users see changes only after a build passed.
    See docs/dbt.md, "Write-audit-publish". -#}

{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Schemas as named in dbt_project.yml (`staging`, `audit`), not dbt's
        default `main_staging`; `main` holds only what was published. -#}
    {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}


{% macro iqb_before_build() -%}
    {#- on-run-start: finish a publish that a kill interrupted, then refuse to
        build from a cache that is empty or holds a corrupt entry. -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set committed = iqb_call('iqb_recover') -%}
    {%- if committed -%}
        {%- do log("iqb: finishing the publish of an interrupted build (" ~ committed | join(', ') ~ ")", info=true) -%}
        {%- do publish_database([]) -%}
        {%- for invocation in committed -%}{%- do iqb_call('iqb_discard', [invocation]) -%}{%- endfor -%}
    {%- endif -%}
    {%- set cache = iqb_call('iqb_check_cache') -%}
    {%- if cache['corrupt'] -%}
        {%- set lines = [] -%}
        {%- for c in cache['corrupt'] -%}{%- do lines.append("  " ~ c['key'] ~ ": " ~ c['reason']) -%}{%- endfor -%}
        {{- exceptions.raise_compiler_error(
            "iqb: " ~ cache['corrupt'] | length ~ " corrupt cache entr" ~ ("y" if cache['corrupt'] | length == 1 else "ies")
            ~ " under " ~ cache['cache'] ~ "; nothing was built:\n" ~ lines | join("\n")
            ~ "\nRe-make them with `iqb extract run` (or `iqb cache pull <manifest>`), then build again.") -}}
    {%- endif -%}
    {%- if cache['unverified'] -%}
        {%- set n = cache['unverified'] | length -%}
        {%- do log("iqb: WARNING " ~ n ~ " cache entr" ~ ("y" if n == 1 else "ies") ~ " in upstream's format"
                   ~ " (no SHA-256 in stats.json, nothing recorded) are built as their folders say, e.g. "
                   ~ cache['unverified'][:3] | join(', ') ~ ". Nothing shows that their bytes belong under"
                   ~ " that period and dataset: `iqb cache pull <manifest>` checks each against its key's"
                   ~ " hash in the manifest (`iqb cache status` lists them)", info=true) -%}
    {%- endif -%}
    {%- if cache['readable'] == 0 -%}
        {{- exceptions.raise_compiler_error(
            "iqb: nothing to build: no cache entry under " ~ cache['cache']
            ~ ". Fill it first with `iqb extract run` (or `iqb sample` then `iqb extract run` for"
            ~ " the offline demo, or `iqb cache pull <manifest>`).") -}}
    {%- endif -%}
    {{- return('') -}}
{%- endmacro %}


{% macro iqb_after_build(results) -%}
    {#- on-run-end: publish this build's staged marts when every node passed and
        every model and seed that has tests was tested; otherwise (or with
        --empty, which builds the models without rows) publish nothing. -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{- return('') -}}
    {%- endif -%}
    {%- do record_view_fingerprints(results) -%}
    {%- set problems, skipped, tested = [], [], [] -%}
    {%- for r in results -%}
        {%- if r.status == 'skipped' -%}
            {%- do skipped.append(r.node.name) -%}
        {%- elif r.status in ('error', 'fail', 'runtime error') -%}
            {%- do problems.append(r.node.name ~ " (" ~ r.status ~ ")") -%}
        {%- endif -%}
        {%- if r.node.resource_type == 'test' and r.node.attached_node and r.status != 'skipped' -%}
            {%- do tested.append(r.node.attached_node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for r in results if r.node.resource_type in ('model', 'seed') and r.status == 'success'
                            and r.node.unique_id not in tested -%}
        {%- for test in graph.nodes.values() if test.resource_type == 'test'
                                                and test.attached_node == r.node.unique_id -%}
            {%- if loop.first -%}{%- do problems.append(r.node.name ~ " (not tested in this run)") -%}{%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if skipped -%}
        {%- do problems.append(skipped | length ~ " node(s) skipped") -%}
    {%- endif -%}
    {%- if flags.EMPTY -%}
        {%- do problems.append("--empty builds every model without rows (a check of the SQL)") -%}
    {%- endif -%}
    {%- if problems -%}
        {%- do iqb_call('iqb_discard', [invocation_id]) -%}
        {%- do run_statements(mart_views(['audit'])) -%}
        {%- do log("iqb: NOTHING PUBLISHED. Users still see the last good build. "
                   ~ "Why: " ~ problems[:10] | join('; ')
                   ~ ("; and " ~ (problems | length - 10) ~ " more" if problems | length > 10 else "")
                   ~ (". `dbt run` does not test: use `dbt build`." if flags.WHICH == 'run' else ""), info=true) -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set outcome = iqb_call('iqb_commit', [invocation_id, min_sample_count()]) -%}
    {%- if 'error' in outcome -%}
        {%- do iqb_call('iqb_discard', [invocation_id]) -%}
        {{- exceptions.raise_compiler_error("iqb: " ~ outcome['error'] ~ ". Users still see the last good build.") -}}
    {%- endif -%}
    {%- set published = outcome['published'] -%}
    {%- do publish_database(results) -%}
    {%- do iqb_call('iqb_discard', [invocation_id]) -%}
    {%- do warn_invalid_values() -%}
    {%- do log("iqb: published " ~ published | length ~ " mart(s) " ~ published.keys() | list | sort, info=true) -%}
    {{- return('') -}}
{%- endmacro %}


{% macro publish_database(results) -%}
    {#- Point `main` at what is published, in one transaction: each quality mart
        a view over its published files, a copy of each seed this run loaded
        (and so tested: iqb_after_build), each view built by this run (the
        scores) re-created over `main`'s relations. A seed that this run did
        not load is left as published: `audit` may hold one that failed its
        tests in an earlier build. The marts' relations in `audit` are
        re-pointed too, so that a later `dbt test` tests what is published. -#}
    {%- set statements = mart_views(['main', 'audit']) -%}
    {%- for r in results if r.node.resource_type == 'seed' and r.status == 'success' -%}
        {%- set node = r.node -%}
        {%- set built = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if built is not none -%}
            {%- do statements.append('create or replace table main.' ~ adapter.quote(node.alias)
                ~ ' as select * from ' ~ built) -%}
            {%- do statements.extend(comments('table', 'main.' ~ adapter.quote(node.alias), node)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for r in results if r.node.resource_type == 'model' and r.node.config.materialized == 'view'
                            and r.node.config.schema == 'audit' -%}
        {%- do statements.append('create or replace view main.' ~ adapter.quote(r.node.alias) ~ ' as '
            ~ r.node.compiled_code | replace('."audit".', '."main".')) -%}
        {%- do statements.extend(comments('view', 'main.' ~ adapter.quote(r.node.alias), r.node)) -%}
    {%- endfor -%}
    {%- do statements.append('drop table if exists audit.iqb_published_views') -%}  {#- an earlier design's record -#}
    {%- do run_statements(statements) -%}
{%- endmacro %}


{% macro run_statements(statements) -%}
    {#- One statement text, in dbt's transaction: all of it commits, or none. -#}
    {%- if statements -%}
        {%- call statement('iqb_publish', auto_begin=True) -%}
            {{ statements | join(';\n') }}
        {%- endcall -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
{%- endmacro %}


{% macro mart_views(schemas) -%}
    {#- Statements that make each quality mart in `schemas` a view over its
        published files (an empty table of its columns when it has none). -#}
    {%- set statements = [] -%}
    {#- the database itself, not dbt's relation cache: this invocation may have
        changed `main` already (recovery in on-run-start) -#}
    {%- set existing_types = {} -%}
    {%- for row in run_query("select table_schema || '.' || table_name, table_type from information_schema.tables "
                             ~ "where table_catalog = current_database()").rows -%}
        {%- do existing_types.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
                                            and node.config.materialized == 'audited_periods' -%}
        {%- set files = iqb_call('iqb_published_files', [node.alias]) -%}
        {%- for schema in schemas -%}
            {%- set name = schema ~ '.' ~ adapter.quote(node.alias) -%}
            {%- set existing = existing_types.get(schema ~ '.' ~ node.alias) -%}
            {%- set drop = 'drop ' ~ ('view' if existing == 'VIEW' else 'table') ~ ' ' ~ name -%}
            {%- if files -%}
                {%- if existing is not none -%}{%- do statements.append(drop) -%}{%- endif -%}
                {%- do statements.append('create view ' ~ name ~ ' as select * from ' ~ read_mart_files(files)) -%}
                {%- do statements.extend(comments('view', name, node)) -%}
            {%- elif schema == 'main' and (node.schema ~ '.' ~ node.alias) in existing_types -%}
                {#- no published period: an empty table with the mart's columns -#}
                {%- if existing is not none -%}{%- do statements.append(drop) -%}{%- endif -%}
                {%- do statements.append('create table ' ~ name ~ ' as select * from '
                    ~ node.schema ~ '.' ~ adapter.quote(node.alias) ~ ' where false') -%}
                {%- do statements.extend(comments('table', name, node)) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(statements) -}}
{%- endmacro %}


{% macro comments(kind, name, node) -%}
    {#- Statements that give the relation `name` (a `kind`: view or table) the
        descriptions of `node` from its YAML. A relation re-created on publish
        loses what persist_docs wrote on the built one, and `main` is what
        people read with `describe` or duckdb_columns() in the shell. -#}
    {%- set statements = [] -%}
    {%- if node.description -%}
        {%- do statements.append('comment on ' ~ kind ~ ' ' ~ name ~ ' is ' ~ sql_string(node.description)) -%}
    {%- endif -%}
    {%- for column in node.columns.values() if column.description -%}
        {%- do statements.append('comment on column ' ~ name ~ '.' ~ adapter.quote(column.name)
            ~ ' is ' ~ sql_string(column.description)) -%}
    {%- endfor -%}
    {{- return(statements) -}}
{%- endmacro %}


{% macro warn_invalid_values() -%}
    {#- Name the places whose values are NaN, infinite or out of range in the
        periods just published: they are kept, flagged, and not scored. -#}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
                                            and node.config.materialized == 'audited_periods' -%}
        {%- set relation = adapter.get_relation(database=node.database, schema='main', identifier=node.alias) -%}
        {%- if relation is not none -%}
            {%- set rows = run_query("select period_start, country_code, count(*) over () from " ~ relation
                ~ " where has_invalid_values and loaded_at = " ~ loaded_at() ~ " order by 1, 2 limit 5").rows -%}
            {%- if rows -%}
                {%- set shown = [] -%}
                {%- for row in rows -%}{%- do shown.append(row[1] ~ " " ~ row[0]) -%}{%- endfor -%}
                {%- do log("iqb: WARNING " ~ node.alias ~ ": " ~ rows[0][2] ~ " row(s) with NaN, infinite or"
                           ~ " out-of-range values, kept and not scored (has_invalid_values), e.g. "
                           ~ shown | join(', '), info=true) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}
