-- downloads_by_country_subdivision1: one row per place (country_subdivision1) for [@start_date, @end_date).
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
    COUNTIF(valid) AS sample_count,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(1)] AS download_p1,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(5)] AS download_p5,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(10)] AS download_p10,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(25)] AS download_p25,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(50)] AS download_p50,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(75)] AS download_p75,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(90)] AS download_p90,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(95)] AS download_p95,
    APPROX_QUANTILES(IF(valid, download, NULL), 100)[OFFSET(99)] AS download_p99,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(99)] AS latency_p1,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(95)] AS latency_p5,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(90)] AS latency_p10,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(75)] AS latency_p25,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(50)] AS latency_p50,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(25)] AS latency_p75,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(10)] AS latency_p90,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(5)] AS latency_p95,
    APPROX_QUANTILES(IF(valid, latency, NULL), 100)[OFFSET(1)] AS latency_p99,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(99)] AS loss_p1,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(95)] AS loss_p5,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(90)] AS loss_p10,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(75)] AS loss_p25,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(50)] AS loss_p50,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(25)] AS loss_p75,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(10)] AS loss_p90,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(5)] AS loss_p95,
    APPROX_QUANTILES(IF(valid, loss, NULL), 100)[OFFSET(1)] AS loss_p99,
    COUNTIF(NOT valid) AS left_out_count
FROM (
    SELECT
        client.Geo.CountryCode AS country_code,
        client.Geo.Subdivision1ISOCode AS subdivision1_iso_code,
        client.Geo.Subdivision1Name AS subdivision1_name,
        a.MeanThroughputMbps AS download,
        a.MinRTT AS latency,
        a.LossRate AS loss,
        NOT IS_NAN(a.MeanThroughputMbps) AND NOT IS_INF(a.MeanThroughputMbps)
            AND a.MeanThroughputMbps >= 0
            AND NOT IS_NAN(a.MinRTT) AND NOT IS_INF(a.MinRTT) AND a.MinRTT >= 0
            AND a.LossRate BETWEEN 0 AND 1 AS valid
    FROM `measurement-lab.ndt.unified_downloads`
    WHERE
        date >= @start_date
        AND date < @end_date
        AND client.Geo.CountryCode IS NOT NULL
        AND client.Geo.Subdivision1ISOCode IS NOT NULL
        AND client.Geo.Subdivision1Name IS NOT NULL
        AND a.MeanThroughputMbps IS NOT NULL
        AND a.MinRTT IS NOT NULL
        AND a.LossRate IS NOT NULL
)
GROUP BY country_code, subdivision1_iso_code, subdivision1_name
ORDER BY country_code, subdivision1_iso_code, subdivision1_name
