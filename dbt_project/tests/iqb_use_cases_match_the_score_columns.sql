{#- The score views' columns and contracts were generated (scripts/generate.py,
    macros/use_cases.sql) from the use cases of the seed iqb_use_cases. A seed
    edited without running generate.py would score the wrong use cases, or
    silently none of a new one: the build stops here instead, with a message
    that names the use cases and the command, and publishes nothing. -#}
{%- set generated = iqb_use_cases() -%}
{#- `dbt build --empty` reads every ref as no rows: there is no seed to compare then -#}
{%- set empty_run = empty_run() -%}

with

seed as (

    select use_case from {{ ref('iqb_use_cases') }}

),

generated as (

    select unnest(['{{ generated | join("', '") }}']) as use_case  -- noqa: LT05

),

drift as (

    select
        string_agg(seed.use_case, ', ' order by seed.use_case) filter (
            where generated.use_case is null
        ) as not_generated,
        string_agg(generated.use_case, ', ' order by generated.use_case) filter (
            where seed.use_case is null
        ) as not_in_seed
    from seed
    full outer join generated on seed.use_case = generated.use_case

)

select *
from drift
where
    {{ 'false and' if empty_run else '' }}
    (not_generated is not null or not_in_seed is not null)
    and error(
        'seeds/iqb_use_cases.csv and the score columns differ (new in the seed: '
        || coalesce(not_generated, 'none') || '; gone from it: '
        || coalesce(not_in_seed, 'none')
        || '): run dbt_project/scripts/generate.py, then dbt build'
    ) is null
