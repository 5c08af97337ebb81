-- sixsense_people: one row per row of the enrichment table, with a typed column for every key
-- of the people_full value (DESIGN.md, "Output value"), so analysts never write SUPER paths.
-- `e.enrichment.key` is PartiQL navigation into the SUPER value (lax: a missing key is NULL):
-- https://docs.aws.amazon.com/redshift/latest/dg/query-super.html
--
-- Text keys are cast with ::varchar. Numbers and booleans are cast from SUPER directly: a value
-- of another type becomes NULL rather than failing the query (dynamic typing, lax mode). The
-- timestamp is text in the value, cast through varchar.
-- The arrays stay SUPER; sixsense_scores and sixsense_segments give them one row per element.
create or replace view {{ schema }}.sixsense_people as
with enriched as (
    select
        email,
        country,
        enrichment,
        enriched_at
    from {{ schema }}.{{ enriched_table }}
),

final as (
    select
        e.email,
        e.country,
        e.enrichment.status::varchar as status,
        e.enrichment.error::varchar as error,
        e.enrichment.company_id::varchar as company_id,
        e.enrichment.company_domain::varchar as company_domain,
        e.enrichment.company_name::varchar as company_name,
        e.enrichment.company_region::varchar as company_region,
        e.enrichment.company_country::varchar as company_country,
        e.enrichment.company_country_iso_code::varchar as company_country_iso_code,
        e.enrichment.company_state::varchar as company_state,
        e.enrichment.company_city::varchar as company_city,
        e.enrichment.company_street_address::varchar as company_street_address,
        e.enrichment.company_postal_code::varchar as company_postal_code,
        e.enrichment.company_phone::varchar as company_phone,
        e.enrichment.company_industry::varchar as company_industry,
        e.enrichment.company_employee_range::varchar as company_employee_range,
        e.enrichment.company_revenue_range::varchar as company_revenue_range,
        e.enrichment.company_employee_count::bigint as company_employee_count,
        e.enrichment.company_annual_revenue::decimal(38, 2) as company_annual_revenue,
        e.enrichment.company_sic_code::varchar as company_sic_code,
        e.enrichment.company_sic_description::varchar as company_sic_description,
        e.enrichment.company_naics_code::varchar as company_naics_code,
        e.enrichment.company_naics_description::varchar as company_naics_description,
        e.enrichment.contact_title_level::varchar as contact_title_level,
        e.enrichment.contact_title_function::varchar as contact_title_function,
        e.enrichment.scores as scores,
        e.enrichment.segment_ids as segment_ids,
        e.enrichment.segment_names as segment_names,
        e.enrichment.segments as segments,
        e.enrichment.fetched_at::varchar::timestamptz as fetched_at,
        e.enrichment.from_cache::boolean as from_cache,
        e.enriched_at
    from enriched as e
)

select * from final;
