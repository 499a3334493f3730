-- IQB scores per period and country, from quality_by_country and the seeds
-- iqb_requirements and iqb_use_cases. The SQL is in macros/iqb_scores.sql.
{{ iqb_scores(
    quality_mart=ref('quality_by_country'),
    place_keys=['country_code']
) }}
