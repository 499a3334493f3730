-- uploads_by_country_city_asn: one row per place (country_city_asn) for [@start_date, @end_date).
-- BigQuery dialect; the embedded engine transpiles it to DuckDB with sqlglot.
-- Latency and loss are lower-is-better: their labels are inverted, so that
-- *_p95 always means what the best ~5% of users get (docs/datasets.md).
-- A measurement with a NaN, infinite or out-of-range value is left out of
-- sample_count and every percentile, as one with a NULL is, and counted in
-- left_out_count: the cache writer adds it up into stats.json and drops the
-- column (and any place whose measurements were all left out). Counting them
-- does not change which measurements the percentiles read.
SELECT
    country_code,
    subdivision1_iso_code,
    subdivision1_name,
    city,
    asn,
    as_name,
    COUNTIF(valid) AS sample_count,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(1)] AS upload_p1,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(5)] AS upload_p5,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(10)] AS upload_p10,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(25)] AS upload_p25,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(50)] AS upload_p50,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(75)] AS upload_p75,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(90)] AS upload_p90,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(95)] AS upload_p95,
    APPROX_QUANTILES(IF(valid, upload, NULL), 100)[OFFSET(99)] AS upload_p99,
    COUNTIF(NOT valid) AS left_out_count
FROM (
    SELECT
        client.Geo.CountryCode AS country_code,
        client.Geo.Subdivision1ISOCode AS subdivision1_iso_code,
        client.Geo.Subdivision1Name AS subdivision1_name,
        client.Geo.city AS city,
        client.Network.ASNumber AS asn,
        client.Network.ASName AS as_name,
        a.MeanThroughputMbps AS upload,
        NOT IS_NAN(a.MeanThroughputMbps) AND NOT IS_INF(a.MeanThroughputMbps)
            AND a.MeanThroughputMbps >= 0 AS valid
    FROM `measurement-lab.ndt.unified_uploads`
    WHERE
        date >= @start_date
        AND date < @end_date
        AND client.Geo.CountryCode IS NOT NULL
        AND client.Geo.Subdivision1ISOCode IS NOT NULL
        AND client.Geo.Subdivision1Name IS NOT NULL
        AND client.Geo.city IS NOT NULL
        AND client.Network.ASNumber IS NOT NULL
        AND client.Network.ASName IS NOT NULL
        AND a.MeanThroughputMbps IS NOT NULL
)
GROUP BY country_code, subdivision1_iso_code, subdivision1_name, city, asn, as_name
ORDER BY country_code, subdivision1_iso_code, subdivision1_name, city, asn, as_name
