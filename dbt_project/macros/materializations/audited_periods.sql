{#- Write-audit-publish, one period at a time. See docs/dbt.md, "Write-audit-publish". -#}

{% materialization audited_periods, adapter='duckdb' %}
    {#- A quality mart as Parquet, one file per period:

        1. plan: the periods whose cache entries (their SHA-256), SQL or
           min_sample_count changed since their file was published
           (extract/transform/marts.py; --full-refresh: every period);
        2. write each such period once, in this build's own folder
           marts/.builds/<invocation>/ (hidden from readers of marts/), and
           check its grain (config unique_key) in the file just written: one
           period's rows at a time, so memory does not grow with the history;
        3. this model's relation, in dbt's working database, is a view over
           the published build's files that stay plus the new ones: dbt's
           tests audit it next;
        4. on-run-end publishes the build, only when every node passed: a new
           published database that reads these files (macros/publish.sql,
           extract/transform/publish.py). -#}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set datasets = [] -%}
    {%- set staging = {} -%}
    {%- for parent in model.depends_on.nodes if parent.startswith('model.') and '.stg_' in parent -%}
        {%- set dataset = parent.split('.stg_')[-1] -%}
        {%- do datasets.append(dataset) -%}
        {%- set node = graph.nodes[parent] -%}
        {%- set name = api.Relation.create(
                database=node.database, schema=node.schema, identifier=node.alias) | string -%}
        {%- if name not in sql -%}
            {%- do exceptions.raise_compiler_error(
                this.identifier ~ ": its SQL does not name " ~ name ~ " as ref() renders it") -%}
        {%- endif -%}
        {%- do staging.update({dataset: name}) -%}
    {%- endfor -%}
    {#- Rows sorted by cluster_by and written in small row groups with the
        compression of parquet_options (model configs, dbt_project.yml): a
        lookup of one network or country then reads the row groups whose
        min/max statistics can hold it, not the whole file. -#}
    {%- set cluster_by = config.get('cluster_by') or [] -%}
    {%- set unique_key = config.require('unique_key') -%}
    {%- set parquet_options = config.require('parquet_options') -%}
    {%- if parquet_options is not mapping
          or parquet_options.keys() | sort | list != ['compression', 'row_group_size'] -%}
        {{ exceptions.raise_compiler_error(
            "config parquet_options of " ~ this.identifier ~ " must have exactly the keys "
            ~ "compression and row_group_size, got " ~ parquet_options) }}
    {%- endif -%}
    {%- set compression = parquet_options['compression'] -%}
    {%- set row_group_rows = parquet_options['row_group_size'] -%}
    {#- how the files are written is part of what they are: a change rebuilds them -#}
    {%- set write_options = [compression, row_group_rows, cluster_by] | string -%}
    {%- set plan = iqb_call('iqb_plan', [
        this.identifier, datasets | join(','), local_md5(sql ~ write_options), min_sample_count(),
        should_full_refresh(), invocation_id]) -%}
    {%- set processed = plan['process'] | map(attribute='label') | list -%}
    {%- do log(this.identifier ~ ": " ~ processed | length ~ " period(s) to process "
               ~ processed ~ (", " ~ plan['drop'] | length ~ " to drop" if plan['drop'] else ""), info=true) -%}

    {{ run_hooks(pre_hooks) }}

    {#- asked once, not per period: each question to the plugin is a statement -#}
    {%- set cache_pattern = iqb_call('iqb_paths')['cache_period_regex'] if plan['process'] else none -%}

    {%- for period in plan['process'] %}
        {%- set period_sql = sql | replace(period_placeholder(),
                period_filter([(period['start'], period['end'])])) -%}
        {#- Each staging view reads every period's files, and DuckDB's pruning by
            file name costs ~1 ms per file and scan: at 205 periods that is most
            of a small mart's time. The period's COPY reads the same select over
            its own files only (the filter above then keeps every row). -#}
        {%- set ns = namespace(sql=period_sql) -%}
        {%- for dataset, name in staging.items() -%}
            {%- set own = [period['inputs'][dataset]] if dataset in period['inputs'] else [] -%}
            {%- set ns.sql = ns.sql | replace(name, '(' ~ stage_dataset(dataset, own, cache_pattern) ~ ')') -%}
        {%- endfor -%}
        {%- set period_sql = ns.sql -%}
        {#- the period's grain, checked in the file just written: one statement
            with the COPY (a statement of dbt's costs ~5 ms, times every period) -#}
        {% call statement('stage', fetch_result=true) -%}
            copy (
                {{ with_provenance(period_sql, period) }}
                {%- if cluster_by %}
                order by {{ cluster_by | join(', ') }}
                {%- endif %}
            ) to {{ sql_string(period['staged']) }} (
                format parquet,
                compression {{ compression }},
                row_group_size {{ row_group_rows }},
                kv_metadata {
                    'iqb.source_fingerprint': {{ sql_string(period['fingerprint']) }},
                    'iqb.min_sample_count': '{{ min_sample_count() }}'
                }
            );
            {{ unique_violations(period, unique_key) }}
        {%- endcall %}
        {%- do refuse_duplicates(load_result('stage')['table'].rows[0], period, unique_key) -%}
    {%- endfor %}

    {#- the kept files of the published build plus the ones written now -#}
    {%- set files = plan['files'] -%}
    {% call statement('main') -%}
        create or replace view {{ target_relation }} as
        {% if files -%}
            select * from {{ read_mart_files(files) }}
        {%- else -%}
            {{ with_provenance(sql | replace(period_placeholder(), 'false'), none) }}
        {%- endif %}
    {%- endcall %}

    {{ run_hooks(post_hooks) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro unique_violations(period, unique_key) -%}
    {#- One row: how many rows of the period's file just written share their
        grain with another, and up to three of those keys. -#}
    {%- set key = "concat_ws(' ', " ~ unique_key | join(', ') ~ ")" -%}
    select
        coalesce(sum(n_rows), 0)::bigint as n_rows,
        array_to_string(list(distinct {{ key }} order by {{ key }})[1:3], ' | ') as examples
    from ({{ duplicate_keys('read_parquet(' ~ sql_string(period['staged']) ~ ')', unique_key) }})
{%- endmacro %}


{% macro refuse_duplicates(violations, period, unique_key) -%}
    {#- Fail the model when the period's file has duplicate keys: the file
        stays in the build's own folder, so nothing is published. The message
        is the row_checks test's. -#}
    {%- if violations[0] > 0 -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ " fails: unique(" ~ unique_key | join(', ') ~ "): " ~ violations[0]
            ~ " row(s), e.g. " ~ violations[1] ~ " (period " ~ period['label'] ~ ")") }}
    {%- endif -%}
{%- endmacro %}


{% macro with_provenance(period_sql, period) -%}
    {#- The mart's rows plus where they come from: the kinds of cache entries
        behind the period (synthetic, raw, bigquery, upstream), the fingerprint
        of those entries, and when this build wrote them. -#}
    select
        rows.*,
        {{ sql_string(period['source_kind']) if period else 'null' }}::varchar as source_kind,
        {{ (period['is_synthetic'] | string | lower) if period else 'null' }}::boolean as is_synthetic,
        {{ sql_string(period['fingerprint']) if period else 'null' }}::varchar as source_fingerprint,
        {{ loaded_at() }} as loaded_at
    from (
        {{ period_sql }}
    ) as rows
{%- endmacro %}


{% macro read_mart_files(files) -%}
    {#- A mart's period files as one relation. Their folders are named
        period=<start>_<end> so that pyarrow, pandas or Spark read a mart's
        folder as one partitioned table; DuckDB would read that name as one
        more column, `period`, which the contract does not have. -#}
    read_parquet({{ sql_string_list(files) }}, hive_partitioning = false)
{%- endmacro %}
