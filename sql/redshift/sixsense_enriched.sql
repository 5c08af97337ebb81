-- The table that the three views read: one row per lead, with the people_full value as SUPER
-- (JSON_PARSE of the function's JSON text). Fill it with INSERT ... SELECT or MERGE
-- (docs/redshift.md). The views never call the function themselves: a SELECT on a view must not
-- wait on 6sense or spend credits.
-- https://docs.aws.amazon.com/redshift/latest/dg/r_SUPER_type.html
--
-- `if not exists`: re-running the scripts never drops enrichment that cost credits.
create table if not exists {{ schema }}.{{ enriched_table }} (
    email varchar(320),
    country varchar(256),
    enrichment super,
    enriched_at timestamptz default getdate()
);
