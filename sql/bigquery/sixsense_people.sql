-- sixsense_people: one row per row of the enrichment table, with a typed column for every key
-- of the people_full value (DESIGN.md, "Output value"), so analysts never write JSON paths.
--
-- JSON_VALUE returns a JSON scalar as STRING (NULL for objects, arrays and JSON null):
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#json_value
-- Numbers, booleans and the timestamp go through SAFE_CAST of that text, so a value of the
-- wrong type becomes NULL instead of failing the query.
-- https://cloud.google.com/bigquery/docs/reference/standard-sql/conversion_functions#safe_casting
-- The arrays stay JSON (JSON_QUERY: NULL unless the path exists); sixsense_scores and
-- sixsense_segments give them one typed row per element.
create or replace view `{{ project }}.{{ dataset }}`.sixsense_people
options (
    description = 'sixsense-udf: one row per enriched lead, a typed column per people_full key'
)
as
with enriched as (
    select
        email,
        country,
        enrichment,
        enriched_at
    from `{{ project }}.{{ dataset }}`.{{ enriched_table }}
),

final as (
    select
        email,
        country,
        json_value(enrichment, '$.status') as status,
        json_value(enrichment, '$.error') as error,
        json_value(enrichment, '$.company_id') as company_id,
        json_value(enrichment, '$.company_domain') as company_domain,
        json_value(enrichment, '$.company_name') as company_name,
        json_value(enrichment, '$.company_region') as company_region,
        json_value(enrichment, '$.company_country') as company_country,
        json_value(enrichment, '$.company_country_iso_code') as company_country_iso_code,
        json_value(enrichment, '$.company_state') as company_state,
        json_value(enrichment, '$.company_city') as company_city,
        json_value(enrichment, '$.company_street_address') as company_street_address,
        json_value(enrichment, '$.company_postal_code') as company_postal_code,
        json_value(enrichment, '$.company_phone') as company_phone,
        json_value(enrichment, '$.company_industry') as company_industry,
        json_value(enrichment, '$.company_employee_range') as company_employee_range,
        json_value(enrichment, '$.company_revenue_range') as company_revenue_range,
        safe_cast(
            json_value(enrichment, '$.company_employee_count') as int64
        ) as company_employee_count,
        safe_cast(
            json_value(enrichment, '$.company_annual_revenue') as numeric
        ) as company_annual_revenue,
        json_value(enrichment, '$.company_sic_code') as company_sic_code,
        json_value(enrichment, '$.company_sic_description') as company_sic_description,
        json_value(enrichment, '$.company_naics_code') as company_naics_code,
        json_value(enrichment, '$.company_naics_description') as company_naics_description,
        json_value(enrichment, '$.contact_title_level') as contact_title_level,
        json_value(enrichment, '$.contact_title_function') as contact_title_function,
        json_query(enrichment, '$.scores') as scores,
        json_query(enrichment, '$.segment_ids') as segment_ids,
        json_query(enrichment, '$.segment_names') as segment_names,
        json_query(enrichment, '$.segments') as segments,
        safe_cast(json_value(enrichment, '$.fetched_at') as timestamp) as fetched_at,
        safe_cast(json_value(enrichment, '$.from_cache') as bool) as from_cache,
        enriched_at
    from enriched
)

select * from final;
