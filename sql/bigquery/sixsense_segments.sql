-- sixsense_segments: one row per lead and 6sense segment. A lead without segments (an empty or
-- missing `segments` array) still appears once, with NULL segment columns.
--
-- JSON_QUERY_ARRAY + LEFT JOIN UNNEST, as in sixsense_scores.sql:
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#json_query_array
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/query-syntax#unnest_operator
create or replace view `{{ project }}.{{ dataset }}`.sixsense_segments
options (
    description = 'sixsense-udf: one row per lead and 6sense segment; leads without segments once'
)
as
with enriched as (
    select
        email,
        country,
        enrichment
    from `{{ project }}.{{ dataset }}`.{{ enriched_table }}
),

exploded as (
    select
        enriched.email,
        enriched.country,
        json_value(enriched.enrichment, '$.status') as status,
        segment_index,
        segment
    from enriched
    left join
        unnest(json_query_array(enriched.enrichment, '$.segments')) as segment
        with offset as segment_index
),

final as (
    select
        email,
        country,
        status,
        segment_index,
        safe_cast(json_value(segment, '$.id') as int64) as segment_id,
        json_value(segment, '$.name') as segment_name
    from exploded
)

select * from final;
