-- The table that the three views read: one row per lead, with the VARIANT that people_full
-- (or people_full_cached) returned for it. Fill it with INSERT ... SELECT or MERGE
-- (docs/snowflake-setup.md), or let the dbt package's incremental model do it.
-- The views never call the functions themselves: a SELECT on a view must not wait on 6sense
-- or spend credits.
-- https://docs.snowflake.com/en/sql-reference/sql/create-table
--
-- `if not exists`: re-running the scripts never drops enrichment that cost credits.
use role {{ owner_role }};

create table if not exists {{ database }}.{{ schema }}.{{ enriched_table }} (
    email varchar,
    country varchar,
    enrichment variant,
    enriched_at timestamp_tz default current_timestamp()
)
comment = 'sixsense-udf: one people_full value per lead; read through the sixsense_* views';
