-- uploads_by_country_subdivision1: one row per place (country_subdivision1) for [@start_date, @end_date).
-- BigQuery dialect; the embedded engine transpiles it to DuckDB with sqlglot.
-- Latency and loss are lower-is-better: their labels are inverted, so that
-- *_p95 always means what the best ~5% of users get (the polarity convention).
SELECT
    client.Geo.CountryCode AS country_code,
    client.Geo.Subdivision1ISOCode AS subdivision1_iso_code,
    client.Geo.Subdivision1Name AS subdivision1_name,
    COUNT(*) AS sample_count,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(1)] AS upload_p1,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(5)] AS upload_p5,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(10)] AS upload_p10,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(25)] AS upload_p25,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(50)] AS upload_p50,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(75)] AS upload_p75,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(90)] AS upload_p90,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(95)] AS upload_p95,
    APPROX_QUANTILES(a.MeanThroughputMbps, 100)[OFFSET(99)] AS upload_p99
FROM `measurement-lab.ndt.unified_uploads`
WHERE
    date >= @start_date
    AND date < @end_date
    AND client.Geo.CountryCode IS NOT NULL
    AND client.Geo.Subdivision1ISOCode IS NOT NULL
    AND client.Geo.Subdivision1Name IS NOT NULL
    AND a.MeanThroughputMbps IS NOT NULL
GROUP BY country_code, subdivision1_iso_code, subdivision1_name
ORDER BY country_code, subdivision1_iso_code, subdivision1_name
