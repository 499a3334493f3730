{#- Write-audit-publish, one period at a time. See docs/dbt.md, "Write-audit-publish". -#}

{% materialization audited_periods, adapter='duckdb' %}
    {#- A quality mart as Parquet, one file per period:

        1. plan: the periods whose cache entries (their SHA-256), SQL or
           min_sample_count changed since their file was published
           (extract/transform/marts.py; --full-refresh: every period);
        2. write each such period once, in this build's own folder
           marts/.builds/<invocation>/ (hidden from readers of marts/), and
           check its grain (config unique_key) in the file just written: one
           period's rows at a time, or a batch of small periods in one
           statement (var period_batch_bytes), so memory does not grow with
           the history;
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
        should_full_refresh(), invocation_id, period_batch_bytes()]) -%}
    {%- set processed = plan['process'] | map(attribute='label') | list -%}
    {%- do log(this.identifier ~ ": " ~ processed | length ~ " period(s) to process "
               ~ processed ~ (", " ~ plan['drop'] | length ~ " to drop" if plan['drop'] else "")
               ~ (" in " ~ plan['batches'] | length ~ " statement(s)"
                  if plan['batches'] | length < processed | length else ""), info=true) -%}

    {{ run_hooks(pre_hooks) }}

    {%- set writer = {
        'sql': sql, 'staging': staging, 'folder': plan['folder'], 'unique_key': unique_key,
        'cluster_by': cluster_by, 'compression': compression, 'row_group_size': row_group_rows,
        'cache_pattern': iqb_call('iqb_paths')['cache_period_regex'] if plan['process'] else none} -%}
    {%- for batch in plan['batches'] %}
        {%- set periods = [] -%}
        {%- for i in batch -%}{%- do periods.append(plan['process'][i]) -%}{%- endfor -%}
        {%- if periods | length == 1 -%}
            {%- do write_period(writer, periods[0]) -%}
        {%- else -%}
            {%- do write_batch(writer, periods) -%}
        {%- endif -%}
    {%- endfor %}

    {#- the kept files of the published build plus the ones written now -#}
    {%- set files = plan['files'] -%}
    {% call statement('main') -%}
        create or replace view {{ target_relation }} as
        {% if files -%}
            select * from {{ read_mart_files(files) }}
        {%- else -%}
            {{ with_provenance(sql | replace(period_placeholder(), 'false'), []) }}
        {%- endif %}
    {%- endcall %}

    {{ run_hooks(post_hooks) }}
    {% do persist_docs(target_relation, model) %}
    {{ adapter.commit() }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{% macro periods_sql(writer, periods) -%}
    {#- The mart's select over `periods` alone. Each staging view reads every
        period's files, and DuckDB's pruning by file name costs ~1 ms per file
        and scan: at 205 periods that is most of a small mart's time. So the
        select reads the periods' own files (the filter then keeps every row). -#}
    {%- set ns = namespace(sql=writer.sql | replace(period_placeholder(), period_filter(periods))) -%}
    {%- for dataset, name in writer.staging.items() -%}
        {%- set own = [] -%}
        {%- for period in periods if dataset in period['inputs'] -%}
            {%- do own.append(period['inputs'][dataset]) -%}
        {%- endfor -%}
        {%- set ns.sql = ns.sql | replace(name, '(' ~ stage_dataset(dataset, own, writer.cache_pattern) ~ ')') -%}
    {%- endfor -%}
    {{- return(ns.sql) -}}
{%- endmacro %}


{% macro parquet_write_options(writer) -%}
    {#- The footer records the min_sample_count the rows were built with: one
        database, one threshold (extract/transform/marts.py, commit). -#}
    format parquet,
    compression {{ writer.compression }},
    row_group_size {{ writer.row_group_size }},
    kv_metadata {'iqb.min_sample_count': '{{ min_sample_count() }}'}
{%- endmacro %}


{% macro write_period(writer, period) -%}
    {#- One period's file, its rows sorted by cluster_by (a lookup of one network
        or country then reads only the row groups whose min/max statistics can
        hold it), its grain checked in the same statement (a statement of dbt's
        costs ~5 ms, times every period). -#}
    {% call statement('stage', fetch_result=true) -%}
        copy (
            {{ with_provenance(periods_sql(writer, [period]), [period]) }}
            {%- if writer.cluster_by %}
            order by {{ writer.cluster_by | join(', ') }}
            {%- endif %}
        ) to {{ sql_string(period['staged']) }} ({{ parquet_write_options(writer) }});
        {{ unique_violations([period], writer.unique_key) }}
    {%- endcall %}
    {%- do refuse_duplicates(load_result('stage')['table'].rows[0], [period], writer.unique_key) -%}
{%- endmacro %}


{% macro write_batch(writer, periods) -%}
    {#- Small periods in one statement: DuckDB's COPY ... PARTITION_BY writes each
        period's file, period=<start>_<end>/data_0.parquet, as the plan names it.
        Its rows are not sorted (a partitioned write does not keep the order):
        a batch holds small periods only, whose files are a row group or a few,
        where the order buys little. A period with no row gets no file from
        PARTITION_BY: it is written alone. -#}
    {%- set dirs = [] -%}
    {%- for period in periods -%}{%- do dirs.append(period['staged'].rsplit('/', 1)[0] ~ '/*') -%}{%- endfor -%}
    {% call statement('stage', fetch_result=true) -%}
        copy (
            {{ with_provenance(periods_sql(writer, periods), periods) }}
        ) to {{ sql_string(writer.folder) }} (
            {{ parquet_write_options(writer) }},
            partition_by (period),
            overwrite_or_ignore
        );
        select coalesce(string_agg(file, chr(10) order by file), '') from glob({{ sql_string_list(dirs) }})
    {%- endcall %}
    {%- set listing = load_result('stage')['table'].rows[0][0] -%}
    {%- set written = listing.split('\n') if listing else [] -%}
    {%- set full = [] -%}
    {%- for period in periods -%}
        {%- if period['staged'] in written -%}
            {%- do full.append(period) -%}
        {%- else -%}
            {%- do write_period(writer, period) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if written | length != full | length -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ ": a batch wrote " ~ written ~ ", one file per period was expected") }}
    {%- endif -%}
    {%- if full -%}
        {% call statement('check', fetch_result=true) -%}
            {{ unique_violations(full, writer.unique_key) }}
        {%- endcall %}
        {%- do refuse_duplicates(load_result('check')['table'].rows[0], full, writer.unique_key) -%}
    {%- endif -%}
{%- endmacro %}


{% macro unique_violations(periods, unique_key) -%}
    {#- One row: how many rows of the periods' files just written share their
        grain with another, and up to three of those keys. -#}
    {%- set key = "concat_ws(' ', " ~ unique_key | join(', ') ~ ")" -%}
    select
        coalesce(sum(n_rows), 0)::bigint as n_rows,
        array_to_string(list(distinct {{ key }} order by {{ key }})[1:3], ' | ') as examples
    from ({{ duplicate_keys('read_parquet(' ~ sql_string_list(periods | map(attribute='staged') | list) ~ ')', unique_key) }})
{%- endmacro %}


{% macro refuse_duplicates(violations, periods, unique_key) -%}
    {#- Fail the model when the periods' files have duplicate keys: the files
        stay in the build's own folder, so nothing is published. The message
        is the row_checks test's. -#}
    {%- if violations[0] > 0 -%}
        {{ exceptions.raise_compiler_error(
            this.identifier ~ " fails: unique(" ~ unique_key | join(', ') ~ "): " ~ violations[0]
            ~ " row(s), e.g. " ~ violations[1] ~ " (period " ~ periods[0]['label']
            ~ (" to " ~ periods[-1]['label'] if periods | length > 1 else "") ~ ")") }}
    {%- endif -%}
{%- endmacro %}


{% macro with_provenance(period_sql, periods) -%}
    {#- The mart's rows plus where they come from: the kinds of cache entries
        behind the period (synthetic, raw, bigquery, upstream), the fingerprint
        of those entries, and when this build wrote them. One period: constants;
        several: joined by period, with the column `period` that names each
        period's folder (a partitioned write leaves it out of the files). -#}
    {%- if periods | length == 1 -%}
        {%- set period = periods[0] -%}
    select
        rows.*,
        {{ sql_string(period['source_kind']) }}::varchar as source_kind,
        {{ period['is_synthetic'] | string | lower }}::boolean as is_synthetic,
        {{ sql_string(period['fingerprint']) }}::varchar as source_fingerprint,
        {{ loaded_at() }} as loaded_at
    from (
        {{ period_sql }}
    ) as rows
    {%- elif periods -%}
    select
        rows.*,
        provenance.source_kind::varchar as source_kind,
        provenance.is_synthetic::boolean as is_synthetic,
        provenance.source_fingerprint::varchar as source_fingerprint,
        {{ loaded_at() }} as loaded_at,
        provenance.period
    from (
        {{ period_sql }}
    ) as rows
    inner join (
        values
        {%- for period in periods %}
            (date '{{ period['start'] }}', date '{{ period['end'] }}', {{ sql_string(period['source_kind']) }},
             {{ period['is_synthetic'] | string | lower }}, {{ sql_string(period['fingerprint']) }},
             {{ sql_string(period['label']) }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as provenance (period_start, period_end, source_kind, is_synthetic, source_fingerprint, period)
        on rows.period_start = provenance.period_start and rows.period_end = provenance.period_end
    {%- else -%}
    select
        rows.*,
        null::varchar as source_kind,
        null::boolean as is_synthetic,
        null::varchar as source_fingerprint,
        {{ loaded_at() }} as loaded_at
    from (
        {{ period_sql }}
    ) as rows
    {%- endif -%}
{%- endmacro %}


{% macro read_mart_files(files) -%}
    {#- A mart's period files as one relation. Their folders are named
        period=<start>_<end> so that pyarrow, pandas or Spark read a mart's
        folder as one partitioned table; DuckDB would read that name as one
        more column, `period`, which the contract does not have. -#}
    read_parquet({{ sql_string_list(files) }}, hive_partitioning = false)
{%- endmacro %}
