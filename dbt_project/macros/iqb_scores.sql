{#- The IQB score (docs/iqb_score.md; upstream m-lab/iqb calculator, default configuration). -#}

{% macro iqb_percentile() -%}
    {#- The percentile the scores compare with the thresholds: dbt var
        `iqb_percentile`, default 95 (upstream's default; upstream's notebook
        also uses 50), declared under vars: in dbt_project.yml, its one home.
        One of the percentiles the marts have, as a whole number: 95.5 is
        refused, not scored as 95. -#}
    {%- set raw = var('iqb_percentile') %}
    {%- set p = raw | int %}
    {#- (`exceptions is defined`: sqlfluff's templater, which lints this, has no dbt
        exceptions; dbt always has them.) -#}
    {%- if ((raw | string) != (p | string) or p not in iqb_percentiles()) and exceptions is defined %}
        {{- exceptions.raise_compiler_error(
            "var iqb_percentile must be one of 1, 5, 10, 25, 50, 75, 90, 95, 99 (the "
            ~ "percentiles of the quality marts), not " ~ raw) }}
    {%- endif %}
    {{- return(p) -}}
{%- endmacro %}


{% macro iqb_requirements() -%}
    {#- requirement -> (metric, comparison that passes). Throughput passes above
        its threshold, latency and loss below it; the value compared is the
        metric's pX at the score percentile, which follows the polarity
        convention (p95: what the best-served ~5% of users get; for latency and
        loss that is the low end). -#}
    {{- return({
        'download_throughput_mbps': ('download', '>'),
        'upload_throughput_mbps': ('upload', '>'),
        'latency_ms': ('latency', '<'),
        'packet_loss': ('loss', '<'),
    }) -}}
{%- endmacro %}


{% macro iqb_scores(quality_mart, place_keys) -%}
    {#- The score view iqb_scores_by_<level>: one row per row of `quality_mart`,
        scored at the percentile of var `iqb_percentile` (default 95; column
        score_percentile). The same SQL as the all-percentiles view at that one
        percentile, so that the two cannot drift apart: when it is not 95, the
        view also carries the four pX columns it compared, by their mart names. -#}
    {{- return(iqb_scores_at(quality_mart, place_keys, [iqb_percentile()])) -}}
{%- endmacro %}


{% macro iqb_scores_all_percentiles(quality_mart, place_keys) -%}
    {#- The view iqb_scores_all_percentiles_by_<level>: every row of
        `quality_mart` scored at each of the nine percentiles of the marts, one
        row per place, period and score_percentile, with the four values each
        score compared (download_px, upload_px, latency_px, loss_px). A score at
        percentile P is computed by the very expressions of a build at P, so
        `where score_percentile = P` gives that build's numbers bit for bit. -#}
    {{- return(iqb_scores_at(quality_mart, place_keys, iqb_percentiles(), all_percentiles=true)) -}}
{%- endmacro %}


{% macro iqb_scores_at(quality_mart, place_keys, percentiles, all_percentiles=false) -%}
    {#- The six use-case scores and the IQB score of each row of `quality_mart`
        at each percentile P of `percentiles` (one union branch per P, so that
        a filter on score_percentile reads only its branch):
          requirement passes   1 if pX > threshold (throughput) or pX < threshold
                               (latency, loss), else 0
          use-case score       weighted mean of its requirements' passes
          iqb_score            weighted mean of the use-case scores
        A score is NULL, not a guess, when the row does not meet the minimum
        sample count, lacks a pX value that a requirement of weight > 0
        needs (e.g. a place with downloads but no uploads), carries a NaN,
        infinite or out-of-range value, or has a country code that is not a
        country; score_status says which. -#}
    {%- set requirements = iqb_requirements() %}
with

places as (

    select * from {{ quality_mart }}

),

-- The values each score compares, under one name per metric: <metric>_px is
-- <metric>_pP of the mart at score_percentile P.
at_percentile as (
    {%- for p in percentiles %}

    select
        *,
        {{ p }} as score_percentile,
        {%- for metric, _ in requirements.values() %}
        {{ metric }}_p{{ p }} as {{ metric }}_px{{ "," if not loop.last }}
        {%- endfor %}
    from places
    {{- "\n\n    union all" if not loop.last }}
    {%- endfor %}

),

requirements as (

    select * from {{ ref('iqb_requirements') }}

),

use_cases as (

    select * from {{ ref('iqb_use_cases') }}

),

-- The seeds pivoted to one row each (requirement_config: <use_case>__<requirement>
-- __weight and __threshold; use_case_config: <use_case>__weight), so that scoring
-- is one pass over the mart. A requirement missing from the seed has weight 0.
requirement_config as (

    select
        {%- for use_case in iqb_use_cases() %}
        {%- set use_case_loop = loop %}
        {%- for requirement in requirements %}
        {%- set key = use_case ~ '/' ~ requirement %}
        coalesce(sum(weight) filter (where requirement_key = '{{ key }}'), 0)
            as {{ use_case }}__{{ requirement }}__weight,
        max(threshold) filter (where requirement_key = '{{ key }}')
            as {{ use_case }}__{{ requirement }}__threshold
        {{- "," if not (loop.last and use_case_loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from (
        select
            weight,
            threshold,
            use_case || '/' || requirement as requirement_key
        from requirements
    ) as keyed

),

use_case_config as (

    select
        {%- for use_case in iqb_use_cases() %}
        coalesce(sum(weight) filter (where use_case = '{{ use_case }}'), 0)
            as {{ use_case }}__weight{{ "," if not loop.last }}
        {%- endfor %}
    from use_cases

),

-- A requirement of weight 0 counts 0 and needs no value; any other compares
-- its pX with the threshold (NULL when the pX is missing).
use_case_scores as (

    select
        places.period_start,
        places.period_end,
        places.country_code,
        places.country_name,
        {%- for key in place_keys if key != 'country_code' %}
        places.{{ key }},
        {%- endfor %}
        {%- if 'asn' in place_keys %}
        places.as_name,
        {%- endif %}
        places.download_sample_count,
        places.upload_sample_count,
        places.meets_min_samples,
        places.is_known_country,
        places.has_invalid_values,
        places.source_kind,
        places.is_synthetic,
        places.download_p95,
        places.upload_p95,
        places.latency_p95,
        places.loss_p95,
        {%- for metric, _ in requirements.values() %}
        {%- if all_percentiles %}
        places.{{ metric }}_px,
        {%- elif percentiles[0] != 95 %}
        places.{{ metric }}_px as {{ metric }}_p{{ percentiles[0] }},
        {%- endif %}
        {%- endfor %}
        places.score_percentile,
        {%- for use_case in iqb_use_cases() %}
        if(
            places.meets_min_samples and places.is_known_country and not places.has_invalid_values,
            (
            {%- for requirement, (metric, passes) in requirements.items() %}
            {%- set config = 'cfg.' ~ use_case ~ '__' ~ requirement %}
                {{ "+ " if not loop.first }}if(
                    {{ config }}__weight = 0,
                    0,
                    {{ config }}__weight * (places.{{ metric }}_px {{ passes }} {{ config }}__threshold)::integer
                )
            {%- endfor %}
            ) / nullif(
            {%- for requirement in requirements %}
                {{ "+ " if not loop.first }}cfg.{{ use_case }}__{{ requirement }}__weight
            {%- endfor %},
                0
            ),
            null
        ) as {{ use_case }}_score{{ "," if not loop.last }}
        {%- endfor %}
    from at_percentile as places
    cross join requirement_config as cfg

),

scored as (

    select
        use_case_scores.*,
        (
        {%- for use_case in iqb_use_cases() %}
            {{ "+ " if not loop.first }}if(
                ucc.{{ use_case }}__weight = 0,
                0,
                ucc.{{ use_case }}__weight * use_case_scores.{{ use_case }}_score
            )
        {%- endfor %}
        ) / nullif(
        {%- for use_case in iqb_use_cases() %}
            {{ "+ " if not loop.first }}ucc.{{ use_case }}__weight
        {%- endfor %},
            0
        ) as iqb_score
    from use_case_scores
    cross join use_case_config as ucc

),

final as (

    select
        scored.*,
        case
            when not scored.is_known_country then 'unknown_country'
            when scored.has_invalid_values then 'invalid_values'
            when not scored.meets_min_samples then 'too_few_samples'
            when scored.iqb_score is null then 'missing_values'
            else 'scored'
        end as score_status
    from scored

)

select * from final
{%- endmacro %}
