-- One row per period and city and network (ASN): downloads and uploads side by side.
-- The SQL is in macros/quality_mart.sql, shared by the six quality marts.
{{ quality_mart(
    downloads=ref('stg_downloads_by_country_city_asn'),
    uploads=ref('stg_uploads_by_country_city_asn'),
    place_keys=['country_code', 'subdivision1_iso_code', 'subdivision1_name', 'city', 'asn']
) }}
