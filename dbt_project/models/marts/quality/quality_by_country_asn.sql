-- One row per period and country and network (ASN): downloads and uploads side by side.
-- The SQL is in macros/quality_mart.sql, shared by the six quality marts.
{{ quality_mart(
    downloads=ref('stg_downloads_by_country_asn'),
    uploads=ref('stg_uploads_by_country_asn'),
    place_keys=['country_code', 'asn']
) }}
