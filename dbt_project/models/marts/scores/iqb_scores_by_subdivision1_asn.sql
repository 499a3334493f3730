-- IQB scores per period and country subdivision and network (ASN), from quality_by_subdivision1_asn and the seeds
-- iqb_requirements and iqb_use_cases. The SQL is in macros/iqb_scores.sql.
{{ iqb_scores(
    quality_mart=ref('quality_by_subdivision1_asn'),
    place_keys=['country_code', 'subdivision1_iso_code', 'subdivision1_name', 'asn']
) }}
