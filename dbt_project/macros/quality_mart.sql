{#- The quality marts: downloads and uploads of one level, side by side. -#}

{% macro quality_mart(downloads, uploads, place_keys) -%}
    {#- One row per period and place of `place_keys`.

        - Downloads and uploads are joined with a FULL OUTER JOIN: a place
          present on one side only is kept, with NULLs on the other side
          (upstream's inner merge dropped it).
        - ASN levels: upstream groups by ASN number *and* name, so a network
          that reports two names in a period has two rows per side. Percentiles
          cannot be merged across rows (the median of two medians is not the
          median), so each side keeps the row of its name with the most samples
          (ties: the first name alphabetically); as_name_count says how many
          names were seen on both sides together.
        - No percentile is ever averaged or recomputed: every value is copied
          from one row of the cache.
        - meets_min_samples: both sides have at least min_sample_count tests.
        - Built one period at a time by the materialization audited_periods
          (macros/materializations/audited_periods.sql), which replaces
          period_placeholder() and adds the provenance columns. -#}
    {%- set by_asn = 'asn' in place_keys -%}
    {#- the rows joined: one per place and side (ASN levels: after de-duplication) -#}
    {%- set d = 'top_downloads' if by_asn else 'downloads' -%}
    {%- set u = 'top_uploads' if by_asn else 'uploads' -%}
    {%- set keys = ['period_start', 'period_end'] + place_keys -%}
    {%- set key_list = keys | join(', ') -%}
    {%- set min_samples = min_sample_count() %}
with

-- Each side is scanned once in full (ASN levels: plus once more for the keys
-- alone). `not materialized`: DuckDB must not buffer a whole wide side for the
-- second reference (that cost 2 GB at city-ASN level, docs/performance.md).
downloads as not materialized (

    select * from {{ downloads }}
    where {{ period_placeholder() }}

),

uploads as not materialized (

    select * from {{ uploads }}
    where {{ period_placeholder() }}

),

countries as (

    select * from {{ ref('iso3166_countries') }}

),
{%- if by_asn %}

-- The row of the name with the most samples, and every name of the place
-- (counted with the other side's in joined.as_name_count). A place has two rows
-- on a side only when its network reported two names, which is rare: only those
-- places go through the window, the others pass straight through (a window over
-- every row cost ~0.2 CPU s per city-ASN period, docs/performance.md).
{%- for side in ['downloads', 'uploads'] %}

{{ side }}_named_twice as (

    select {{ key_list }}
    from {{ side }}
    group by {{ key_list }}
    having count(*) > 1

),

top_{{ side }} as (

    select
        *,
        [as_name] as as_names
    from {{ side }}
    anti join {{ side }}_named_twice using ({{ key_list }})

    union all

    select
        *,
        list(as_name) over (partition by {{ key_list }}) as as_names
    from {{ side }}
    semi join {{ side }}_named_twice using ({{ key_list }})
    qualify row_number() over (
        partition by {{ key_list }}
        order by sample_count desc, as_name
    ) = 1

),
{%- endfor %}
{%- endif %}

joined as (

    select
        {{ keys | join(',\n        ') }},
        {%- if by_asn %}
        coalesce({{ d }}.as_name, {{ u }}.as_name) as as_name,
        len(list_distinct(list_concat({{ d }}.as_names, {{ u }}.as_names))) as as_name_count,
        {%- endif %}
        {{ d }}.sample_count as download_sample_count,
        {{ u }}.sample_count as upload_sample_count,
        {%- for metric, side in [('download', d), ('upload', u), ('latency', d), ('loss', d)] %}
        {%- for column in percentile_columns(metric) %}
        {{ side }}.{{ column }}{{ "," if not loop.last }}
        {%- endfor %}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ d }}
    full outer join {{ u }} using ({{ key_list }})

),

final as (

    select
        joined.period_start,
        joined.period_end,
        joined.country_code,
        countries.country_name,
        {%- for key in place_keys if key != 'country_code' %}
        joined.{{ key }},
        {%- endfor %}
        {%- if by_asn %}
        joined.as_name,
        joined.as_name_count,
        {%- endif %}
        joined.download_sample_count,
        joined.upload_sample_count,
        {{ min_samples }} as min_sample_count,
        coalesce(
            joined.download_sample_count >= {{ min_samples }}
            and joined.upload_sample_count >= {{ min_samples }},
            false
        ) as meets_min_samples,
        {%- for metric in ['download', 'upload', 'latency', 'loss'] %}
        {%- for column in percentile_columns(metric) %}
        joined.{{ column }},
        {%- endfor %}
        {%- endfor %}
        countries.country_code is not null as is_known_country,
        {{ invalid_values('joined') }} as has_invalid_values
    from joined
    left join countries on joined.country_code = countries.country_code

)

select * from final
{%- endmacro %}


{% macro invalid_values(relation) -%}
    {#- True when a percentile is NaN, infinite or negative, or a loss above 1:
        such a row is kept and flagged, and its scores are NULL (iqb_scores).
        The templates leave such measurements out, so only a cache entry from
        elsewhere can carry one. -#}
    (
    {%- for metric in ['download', 'upload', 'latency', 'loss'] %}
    {%- set metric_loop = loop %}
    {%- for column in percentile_columns(metric) %}
    {%- set value = relation ~ '.' ~ column %}
        {{ "or " if not (loop.first and metric_loop.first) }}coalesce(not isfinite({{ value }}) or {{ value }} < 0
        {{- " or " ~ value ~ " > 1" if metric == 'loss' }}, false)
    {%- endfor %}
    {%- endfor %}
    )
{%- endmacro %}
