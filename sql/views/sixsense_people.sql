-- sixsense_people: one row per row of the enrichment table, with a typed column for every key
-- of the people_full value (DESIGN.md, "Output value"), so analysts never write v:key::type.
-- `enrichment:key` is Snowflake's path syntax into a VARIANT:
-- https://docs.snowflake.com/en/user-guide/querying-semistructured
--
-- Text keys are cast with ::varchar, which cannot fail. Numbers, booleans and the timestamp go
-- through TRY_TO_NUMBER, TRY_TO_BOOLEAN and TRY_CAST on the text, so a value of the wrong type
-- becomes NULL instead of failing the query (TRY_ functions take text, hence ::varchar first).
-- https://docs.snowflake.com/en/sql-reference/functions/try_to_decimal
-- https://docs.snowflake.com/en/sql-reference/functions/try_to_boolean
-- https://docs.snowflake.com/en/sql-reference/functions/try_cast
-- The arrays stay arrays, and only arrays: anything else becomes NULL.
use role {{ owner_role }};

create or replace view {{ database }}.{{ schema }}.sixsense_people
comment = 'sixsense-udf: one row per enriched lead, a typed column per people_full key'
as
with enriched as (
    select
        email,
        country,
        enrichment,
        enriched_at
    from {{ database }}.{{ schema }}.{{ enriched_table }}
),

final as (
    select
        email,
        country,
        enrichment:status::varchar as status,
        enrichment:error::varchar as error,
        enrichment:company_id::varchar as company_id,
        enrichment:company_domain::varchar as company_domain,
        enrichment:company_name::varchar as company_name,
        enrichment:company_region::varchar as company_region,
        enrichment:company_country::varchar as company_country,
        enrichment:company_country_iso_code::varchar as company_country_iso_code,
        enrichment:company_state::varchar as company_state,
        enrichment:company_city::varchar as company_city,
        enrichment:company_street_address::varchar as company_street_address,
        enrichment:company_postal_code::varchar as company_postal_code,
        enrichment:company_phone::varchar as company_phone,
        enrichment:company_industry::varchar as company_industry,
        enrichment:company_employee_range::varchar as company_employee_range,
        enrichment:company_revenue_range::varchar as company_revenue_range,
        try_to_number(
            enrichment:company_employee_count::varchar, 38, 0
        ) as company_employee_count,
        try_to_number(
            enrichment:company_annual_revenue::varchar, 38, 2
        ) as company_annual_revenue,
        enrichment:company_sic_code::varchar as company_sic_code,
        enrichment:company_sic_description::varchar as company_sic_description,
        enrichment:company_naics_code::varchar as company_naics_code,
        enrichment:company_naics_description::varchar as company_naics_description,
        enrichment:contact_title_level::varchar as contact_title_level,
        enrichment:contact_title_function::varchar as contact_title_function,
        case
            when is_array(enrichment:scores) then enrichment:scores::array
        end as scores,
        case
            when is_array(enrichment:segment_ids) then enrichment:segment_ids::array
        end as segment_ids,
        case
            when is_array(enrichment:segment_names) then enrichment:segment_names::array
        end as segment_names,
        case
            when is_array(enrichment:segments) then enrichment:segments::array
        end as segments,
        try_cast(enrichment:fetched_at::varchar as timestamp_tz) as fetched_at,
        try_to_boolean(enrichment:from_cache::varchar) as from_cache,
        enriched_at
    from enriched
)

select * from final;
