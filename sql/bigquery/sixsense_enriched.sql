-- The table that the three views read: one row per lead, with the JSON value that people_full
-- (or people_full_cached) returned for it. Fill it with INSERT ... SELECT or MERGE
-- (docs/bigquery.md). The views never call the functions themselves: a SELECT on a view must
-- not wait on 6sense or spend credits (and BigQuery never caches remote function results).
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language
--
-- `if not exists`: re-running the scripts never drops enrichment that cost credits.
create table if not exists `{{ project }}.{{ dataset }}`.{{ enriched_table }} (
    email string,
    country string,
    enrichment json,
    enriched_at timestamp default current_timestamp()
)
options (
    description = 'sixsense-udf: one people_full value per lead; read through the sixsense_* views'
);
