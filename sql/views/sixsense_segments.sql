-- sixsense_segments: one row per lead and 6sense segment. A lead without segments (an empty
-- or missing `segments` array) still appears once, with NULL segment columns.
--
-- LATERAL FLATTEN makes one row per array element:
-- https://docs.snowflake.com/en/sql-reference/functions/flatten
-- Without OUTER => TRUE on purpose, as in sixsense_scores.sql: fakesnow ignores OUTER, so the
-- leads are split into two exact complements (array_size > 0, and NULL or 0) instead, and the
-- view gives the same rows on Snowflake and on fakesnow.
-- https://docs.snowflake.com/en/sql-reference/functions/try_to_decimal
use role {{ owner_role }};

create or replace view {{ database }}.{{ schema }}.sixsense_segments
comment = 'sixsense-udf: one row per lead and 6sense segment; leads without segments once'
as
with enriched as (
    select
        email,
        country,
        enrichment
    from {{ database }}.{{ schema }}.{{ enriched_table }}
),

with_segments as (
    select
        enriched.email,
        enriched.country,
        enriched.enrichment:status::varchar as status,
        segment.index as segment_index,
        segment.value as segment
    from enriched,
        lateral flatten(input => enriched.enrichment:segments) as segment
    where array_size(enriched.enrichment:segments) > 0
),

without_segments as (
    select
        email,
        country,
        enrichment:status::varchar as status,
        null as segment_index,
        null as segment
    from enriched
    where coalesce(array_size(enrichment:segments), 0) = 0
),

exploded as (
    select
        email,
        country,
        status,
        segment_index,
        segment
    from with_segments
    union all
    select
        email,
        country,
        status,
        segment_index,
        segment
    from without_segments
),

final as (
    select
        email,
        country,
        status,
        segment_index,
        try_to_number(segment:id::varchar) as segment_id,
        segment:name::varchar as segment_name
    from exploded
)

select * from final;
