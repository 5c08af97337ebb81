-- sixsense_scores: one row per lead and 6sense product. A lead without scores (an empty or
-- missing `scores` array: no_match, invalid_input, pending, or scores turned off for the token)
-- still appears once, with NULL in every score column, so counts per lead stay honest.
--
-- JSON_QUERY_ARRAY turns the JSON array into an ARRAY<JSON> (NULL when `scores` is missing or
-- not an array), and LEFT JOIN UNNEST keeps the leads whose array is empty or NULL:
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#json_query_array
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/query-syntax#unnest_operator
-- Score values go through SAFE_CAST of JSON_VALUE's text: a wrong type becomes NULL, not an error.
create or replace view `{{ project }}.{{ dataset }}`.sixsense_scores
options (
    description = 'sixsense-udf: one row per lead and 6sense product; leads without scores once'
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
        score_index,
        score
    from enriched
    left join
        unnest(json_query_array(enriched.enrichment, '$.scores')) as score
        with offset as score_index
),

final as (
    select
        email,
        country,
        status,
        score_index,
        json_value(score, '$.product') as product,
        safe_cast(json_value(score, '$.company_intent_score') as int64) as company_intent_score,
        json_value(score, '$.company_buying_stage') as company_buying_stage,
        safe_cast(json_value(score, '$.company_profile_score') as int64) as company_profile_score,
        json_value(score, '$.company_profile_fit') as company_profile_fit,
        safe_cast(json_value(score, '$.contact_intent_score') as int64) as contact_intent_score,
        json_value(score, '$.contact_grade') as contact_grade,
        safe_cast(json_value(score, '$.contact_profile_score') as int64) as contact_profile_score,
        json_value(score, '$.contact_profile_fit') as contact_profile_fit
    from exploded
)

select * from final;
