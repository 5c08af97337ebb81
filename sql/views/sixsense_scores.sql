-- sixsense_scores: one row per lead and 6sense product. A lead without scores (an empty or
-- missing `scores` array: no_match, invalid_input, pending, or scores turned off for the
-- token) still appears once, with NULL in every score column, so counts per lead stay honest.
--
-- LATERAL FLATTEN makes one row per array element:
-- https://docs.snowflake.com/en/sql-reference/functions/flatten
-- It is used without OUTER => TRUE on purpose. fakesnow (the test emulator) ignores OUTER, so a
-- view relying on it would drop the score-less leads there and keep them on Snowflake. Instead
-- the leads are split into two exact complements, with scores (array_size > 0) and without
-- (array_size NULL or 0), and the second half gets one all-NULL row: same rows on both.
-- Score values go through TRY_TO_NUMBER on the text: a wrong type becomes NULL, not an error.
-- https://docs.snowflake.com/en/sql-reference/functions/try_to_decimal
use role {{ owner_role }};

create or replace view {{ database }}.{{ schema }}.sixsense_scores
comment = 'sixsense-udf: one row per lead and 6sense product; leads without scores once'
as
with enriched as (
    select
        email,
        country,
        enrichment
    from {{ database }}.{{ schema }}.{{ enriched_table }}
),

with_scores as (
    select
        enriched.email,
        enriched.country,
        enriched.enrichment:status::varchar as status,
        score.index as score_index,
        score.value as score
    from enriched,
        lateral flatten(input => enriched.enrichment:scores) as score
    where array_size(enriched.enrichment:scores) > 0
),

without_scores as (
    select
        email,
        country,
        enrichment:status::varchar as status,
        null as score_index,
        null as score
    from enriched
    where coalesce(array_size(enrichment:scores), 0) = 0
),

exploded as (
    select
        email,
        country,
        status,
        score_index,
        score
    from with_scores
    union all
    select
        email,
        country,
        status,
        score_index,
        score
    from without_scores
),

final as (
    select
        email,
        country,
        status,
        score_index,
        score:product::varchar as product,
        try_to_number(score:company_intent_score::varchar) as company_intent_score,
        score:company_buying_stage::varchar as company_buying_stage,
        try_to_number(score:company_profile_score::varchar) as company_profile_score,
        score:company_profile_fit::varchar as company_profile_fit,
        try_to_number(score:contact_intent_score::varchar) as contact_intent_score,
        score:contact_grade::varchar as contact_grade,
        try_to_number(score:contact_profile_score::varchar) as contact_profile_score,
        score:contact_profile_fit::varchar as contact_profile_fit
    from exploded
)

select * from final;
