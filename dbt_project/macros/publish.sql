{#- The gates around a build: what readers see changes only after a build passed.
    dbt builds in its own working database (state/dbt/iqb.duckdb); readers open
    the published one (iqb.duckdb), which the plugin writes anew from a passed
    build and switches in with one rename. See docs/dbt.md, "Write-audit-publish". -#}

{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Schemas as named in dbt_project.yml (`staging`), not dbt's default
        `main_staging`; everything else is in `main` of the working database. -#}
    {{- (custom_schema_name or target.schema) | trim -}}
{%- endmacro %}


{% macro iqb_before_build() -%}
    {#- on-run-start: finish a publish that a kill interrupted, then refuse to
        build from a cache that is empty or holds a corrupt entry. -#}
    {%- if not execute or flags.WHICH not in ('build', 'run') -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set settings = {'min_sample_count': min_sample_count(), 'iqb_percentile': iqb_percentile()} -%}
    {%- set finished = iqb_call('iqb_begin', [invocation_id, tojson(settings)]) -%}
    {%- if finished -%}
        {%- do log("iqb: finished the publish of an interrupted build (" ~ finished | join(', ') ~ ")", info=true) -%}
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
    {#- on-run-end: publish this build when every node passed and every model
        and seed that has tests was tested; otherwise (or with --empty, which
        builds the models without rows) publish nothing. -#}
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
    {%- set window = iqb_call('iqb_test_window') -%}
    {%- set read = {} -%}
    {%- for what, start in window.items() -%}
        {%- do read.update({what: 'no period' if start is none else ('every period' if start == '-infinity'
                                  else 'the periods from ' ~ start)}) -%}
    {%- endfor -%}
    {%- do log("iqb: data tests read " ~ read['marts'] ~ " of the marts and " ~ read['scores']
               ~ " of the scores", info=true) -%}
    {%- if problems -%}
        {%- do iqb_call('iqb_discard', [invocation_id]) -%}
        {%- do point_marts_at_published() -%}
        {%- do log("iqb: NOTHING PUBLISHED. Readers still see the last good build. "
                   ~ "Why: " ~ problems[:10] | join('; ')
                   ~ ("; and " ~ (problems | length - 10) ~ " more" if problems | length > 10 else "")
                   ~ (". `dbt run` does not test: use `dbt build`." if flags.WHICH == 'run' else ""), info=true) -%}
        {{- return('') -}}
    {%- endif -%}
    {#- asked first: a no-op build then skips the exports of publish_spec -#}
    {%- set built, built_ids = [], built_nodes(results) -%}
    {%- for node in published_nodes() if node.unique_id in built_ids -%}
        {%- do built.append(node.alias) -%}
    {%- endfor -%}
    {%- set unchanged_build = iqb_call('iqb_nothing_new', [invocation_id, tojson(built)]) -%}
    {%- if unchanged_build -%}
        {%- do iqb_call('iqb_discard', [invocation_id]) -%}
        {%- do log("iqb: nothing new to publish; readers still see build " ~ unchanged_build, info=true) -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set outcome = iqb_call('iqb_publish', [invocation_id, tojson(publish_spec(results))]) -%}
    {%- if 'error' in outcome -%}
        {{- exceptions.raise_compiler_error("iqb: " ~ outcome['error'] ~ ". Readers still see the last good build.") -}}
    {%- endif -%}
    {%- if outcome['published'] -%}
        {%- do warn_invalid_values(outcome['written']) -%}
        {%- do log("iqb: published build " ~ invocation_id ~ " (new periods in " ~ outcome['marts'] ~ ")", info=true) -%}
    {%- else -%}
        {%- do log("iqb: nothing new to publish; readers still see build " ~ outcome['build'], info=true) -%}
    {%- endif -%}
    {{- return('') -}}
{%- endmacro %}


{% macro publish_spec(results) -%}
    {#- What the published database holds (extract/transform/publish.py writes
        it): every seed, quality mart and view model of the project, with its
        YAML descriptions. What this run built is taken from it (a seed's rows
        and a mart's columns as Parquet files, a view's compiled SQL, unchanged);
        the rest is carried over from the published database. -#}
    {%- set built = built_nodes(results) -%}
    {%- set folder = iqb_call('iqb_publish_dir', [invocation_id]) -%}
    {%- set relations = [] -%}
    {%- for node in published_nodes() -%}
        {%- set kind = 'seed' if node.resource_type == 'seed'
                       else ('mart' if node.config.materialized == 'audited_periods' else 'view') -%}
        {%- set columns = {} -%}
        {%- for column in node.columns.values() if column.description -%}
            {%- do columns.update({column.name: column.description}) -%}
        {%- endfor -%}
        {%- set depends = [] -%}
        {%- for parent in node.depends_on.nodes if parent in graph.nodes -%}
            {%- do depends.append(graph.nodes[parent].alias) -%}
        {%- endfor -%}
        {%- set item = {'name': node.alias, 'kind': kind, 'built': node.unique_id in built,
                        'depends_on': depends, 'docs': {'description': node.description, 'columns': columns}} -%}
        {%- if node.unique_id in built -%}
            {%- set relation = adapter.get_relation(database=node.database, schema=node.schema,
                                                    identifier=node.alias) -%}
            {%- if kind == 'view' -%}
                {%- do item.update({'sql': built[node.unique_id].compiled_code}) -%}
            {%- elif relation is not none -%}
                {#- a seed's rows; a mart's columns, for when it has no period yet -#}
                {%- set source = folder ~ '/' ~ node.alias ~ '.parquet' -%}
                {%- do run_query('copy (select * from ' ~ relation ~ (' where false' if kind == 'mart' else '')
                                 ~ ') to ' ~ sql_string(source) ~ ' (format parquet)') -%}
                {%- do item.update({'source': source}) -%}
            {%- endif -%}
        {%- endif -%}
        {%- do relations.append(item) -%}
    {%- endfor -%}
    {%- set settings = {'min_sample_count': min_sample_count(), 'iqb_percentile': iqb_percentile()} -%}
    {{- return({'settings': settings, 'relations': relations}) -}}
{%- endmacro %}


{% macro published_nodes() -%}
    {#- What the published database holds: every seed and model of the project
        but the staging views. -#}
    {%- set nodes = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type in ('seed', 'model')
                                            and node.package_name == project_name
                                            and node.config.schema != 'staging' -%}
        {%- do nodes.append(node) -%}
    {%- endfor -%}
    {{- return(nodes) -}}
{%- endmacro %}


{% macro built_nodes(results) -%}
    {#- unique_id -> node of every seed and model this run built. -#}
    {%- set built = {} -%}
    {%- for r in results if r.status == 'success' and r.node.resource_type in ('seed', 'model') -%}
        {%- do built.update({r.node.unique_id: r.node}) -%}
    {%- endfor -%}
    {{- return(built) -}}
{%- endmacro %}


{% macro point_marts_at_published() -%}
    {#- After a build that is not published: the working database's marts read
        the published files again (this build's are deleted), so that a later
        `dbt test` tests what readers see. -#}
    {%- for node in graph.nodes.values() if node.resource_type == 'model'
                                            and node.config.materialized == 'audited_periods' -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set files = iqb_call('iqb_published_files', [node.alias]) -%}
        {%- if relation is not none and files -%}
            {%- do run_query('create or replace view ' ~ relation ~ ' as select * from ' ~ read_mart_files(files)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{% macro warn_invalid_values(written) -%}
    {#- Name the places whose values are NaN, infinite or out of range in the
        periods this build wrote (`written`: mart -> its new files, read alone:
        a view over the whole mart would open every period's file): they are
        kept, flagged, and not scored. -#}
    {%- for mart, files in written.items() -%}
        {%- set rows = run_query("select period_start, country_code, count(*) over () from "
            ~ read_mart_files(files) ~ " where has_invalid_values order by 1, 2 limit 5").rows -%}
        {%- if rows -%}
            {%- set shown = [] -%}
            {%- for row in rows -%}{%- do shown.append(row[1] ~ " " ~ row[0]) -%}{%- endfor -%}
            {%- do log("iqb: WARNING " ~ mart ~ ": " ~ rows[0][2] ~ " row(s) with NaN, infinite or"
                       ~ " out-of-range values, kept and not scored (has_invalid_values), e.g. "
                       ~ shown | join(', '), info=true) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{% macro empty_run() -%}
    {#- `dbt build --empty`: every ref reads as no rows, so checks that compare
        relations have nothing to compare. -#}
    {{- return(flags.EMPTY | default(false)) -}}
{%- endmacro %}
