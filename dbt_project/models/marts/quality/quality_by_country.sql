-- One row per period and country: downloads and uploads side by side.
-- The SQL is in macros/quality_mart.sql, shared by the six quality marts.
{{ quality_mart(
    downloads=ref('stg_downloads_by_country'),
    uploads=ref('stg_uploads_by_country'),
    place_keys=['country_code']
) }}
