-- sixsense_scores: one row per lead and 6sense product. A lead without scores (an empty or
-- missing `scores` array: no_match, invalid_input, pending, or scores turned off for the token)
-- still appears once, with NULL in every score column, so counts per lead stay honest.
--
-- `from enriched as e, e.enrichment.scores as score at score_index` is PartiQL unnesting: one
-- row per array element, with its position.
-- https://docs.aws.amazon.com/redshift/latest/dg/query-super.html#unnest
-- Unnesting is an inner join, so the leads are split into two exact complements, with scores
-- (array length > 0) and without (not an array, or empty), and the second half gets one
-- all-NULL row. GET_ARRAY_LENGTH is NULL for anything that is not an array.
-- https://docs.aws.amazon.com/redshift/latest/dg/get_array_length.html
create or replace view {{ schema }}.sixsense_scores as
with enriched as (
    select
        email,
        country,
        enrichment
    from {{ schema }}.{{ enriched_table }}
),

with_scores as (
    select
        e.email,
        e.country,
        e.enrichment.status::varchar as status,
        score_index,
        score.product::varchar as product,
        score.company_intent_score::int as company_intent_score,
        score.company_buying_stage::varchar as company_buying_stage,
        score.company_profile_score::int as company_profile_score,
        score.company_profile_fit::varchar as company_profile_fit,
        score.contact_intent_score::int as contact_intent_score,
        score.contact_grade::varchar as contact_grade,
        score.contact_profile_score::int as contact_profile_score,
        score.contact_profile_fit::varchar as contact_profile_fit
    from enriched as e, e.enrichment.scores as score at score_index
    where get_array_length(e.enrichment.scores) > 0
),

without_scores as (
    select
        e.email,
        e.country,
        e.enrichment.status::varchar as status,
        null::int as score_index,
        null::varchar as product,
        null::int as company_intent_score,
        null::varchar as company_buying_stage,
        null::int as company_profile_score,
        null::varchar as company_profile_fit,
        null::int as contact_intent_score,
        null::varchar as contact_grade,
        null::int as contact_profile_score,
        null::varchar as contact_profile_fit
    from enriched as e
    where coalesce(get_array_length(e.enrichment.scores), 0) = 0
),

final as (
    select * from with_scores
    union all
    select * from without_scores
)

select * from final;
