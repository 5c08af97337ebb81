-- sixsense_segments: one row per lead and 6sense segment. A lead without segments (an empty or
-- missing `segments` array) still appears once, with NULL segment columns.
--
-- PartiQL unnesting split into two exact complements, as in sixsense_scores.sql:
-- https://docs.aws.amazon.com/redshift/latest/dg/query-super.html#unnest
-- https://docs.aws.amazon.com/redshift/latest/dg/get_array_length.html
create or replace view {{ schema }}.sixsense_segments as
with enriched as (
    select
        email,
        country,
        enrichment
    from {{ schema }}.{{ enriched_table }}
),

with_segments as (
    select
        e.email,
        e.country,
        e.enrichment.status::varchar as status,
        segment_index,
        segment.id::bigint as segment_id,
        segment.name::varchar as segment_name
    from enriched as e, e.enrichment.segments as segment at segment_index
    where get_array_length(e.enrichment.segments) > 0
),

without_segments as (
    select
        e.email,
        e.country,
        e.enrichment.status::varchar as status,
        null::int as segment_index,
        null::bigint as segment_id,
        null::varchar as segment_name
    from enriched as e
    where coalesce(get_array_length(e.enrichment.segments), 0) = 0
),

final as (
    select * from with_segments
    union all
    select * from without_segments
)

select * from final;
