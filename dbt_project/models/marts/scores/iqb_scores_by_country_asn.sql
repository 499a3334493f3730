-- IQB scores per period and country and network (ASN), from quality_by_country_asn and the seeds
-- iqb_requirements and iqb_use_cases. The SQL is in macros/iqb_scores.sql.
{{ iqb_scores(
    quality_mart=ref('quality_by_country_asn'),
    place_keys=['country_code', 'asn']
) }}
