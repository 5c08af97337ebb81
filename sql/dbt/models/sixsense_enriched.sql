{#-
    One row per lead (lead_key) with its people_full value. Incremental: each run asks the
    function only about
      - new leads (not in this table yet),
      - leads whose last answer was not final (var sixsense_retry_statuses, e.g. pending from
        the cached route: the service has fetched them in the background since), and
      - final answers older than var sixsense_stale_after_days.
    Everything else is left as it is, so a daily run costs only the new and stale leads.
    A stale lead that the cached route answers `pending` keeps its previous answer (and its
    old enriched_at, so it is asked again next run) instead of losing it to `pending`.
-#}
{{
    config(
        materialized="incremental",
        unique_key="lead_key",
        incremental_strategy="merge",
        on_schema_change="append_new_columns",
    )
}}

{%- set retry_statuses = var(
    "sixsense_retry_statuses", ["pending", "error", "quota_exhausted", "budget_exhausted"]
) %}
{%- set retry_list = "'" ~ retry_statuses | join("', '") ~ "'" %}
{%- set extra_fields = var("sixsense_lead_fields", []) %}
{%- set allowed_fields = [
    "website", "company", "title", "leadsource", "firstname", "lastname", "role", "industry"
] %}
{%- set call_fields = {} %}
{%- for field in extra_fields %}
    {%- if field not in allowed_fields %}
        {{ exceptions.raise_compiler_error(
            "In sixsense_enriched: var sixsense_lead_fields may name only "
            ~ allowed_fields | join(", ") ~ "; got '" ~ field ~ "'."
        ) }}
    {%- endif %}
    {%- do call_fields.update({field: "to_enrich." ~ field}) %}
{%- endfor %}

with leads as (
    select
        *,
        {{ sixsense_udf.lead_key("email", "country") }} as lead_key
    from {{ var("sixsense_leads") }}
    where email is not null
    -- One row per lead even when the source repeats it. QUALIFY filters on a window function:
    -- https://docs.snowflake.com/en/sql-reference/constructs/qualify
    qualify row_number() over (partition by lead_key order by email) = 1
),

{% if is_incremental() %}
previous as (
    select
        lead_key,
        enrichment,
        status,
        enriched_at
    from {{ this }}
),
{% endif %}

{% if is_incremental() %}
to_enrich as (
    select leads.*
    from leads
    left join previous on leads.lead_key = previous.lead_key
    where
        previous.lead_key is null
        or previous.status in ({{ retry_list }})
        or previous.enriched_at < dateadd(
            day, -{{ var("sixsense_stale_after_days", 30) }}, current_timestamp()
        )
),
{% else %}
to_enrich as (
    select * from leads
),
{% endif %}

called as (
    select
        to_enrich.lead_key,
        to_enrich.email,
        to_enrich.country,
        {{ sixsense_udf.people_full(
            email="to_enrich.email", country="to_enrich.country", **call_fields
        ) }} as enrichment,
        current_timestamp()::timestamp_tz as enriched_at
    from to_enrich
),

{% if is_incremental() %}
kept as (
    -- keep a previous final answer rather than replace it with `pending`
    select
        called.lead_key,
        called.email,
        called.country,
        coalesce(
            called.enrichment:status::varchar = 'pending'
            and previous.status not in ({{ retry_list }}),
            false
        ) as keep_previous,
        iff(keep_previous, previous.enrichment, called.enrichment) as enrichment,
        iff(keep_previous, previous.enriched_at, called.enriched_at) as enriched_at
    from called
    left join previous on called.lead_key = previous.lead_key
),
{% else %}
kept as (
    select
        lead_key,
        email,
        country,
        enrichment,
        enriched_at
    from called
),
{% endif %}

final as (
    select
        lead_key,
        email,
        country,
        enrichment,
        enrichment:status::varchar as status,
        enriched_at
    from kept
)

select * from final
