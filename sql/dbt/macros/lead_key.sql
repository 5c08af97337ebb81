{#-
    lead_key(email, country)

    A stable key for one lead: md5 of the trimmed, lower-cased email and the trimmed,
    upper-cased country. The incremental model merges on it, and NULL countries still match
    (a merge on `country = country` would never match a NULL and insert duplicates).
-#}
{% macro lead_key(email, country) -%}
    {{ return(adapter.dispatch("lead_key", "sixsense_udf")(email, country)) }}
{%- endmacro %}


{% macro default__lead_key(email, country) -%}
    md5(
        lower(trim(coalesce({{ email }}, ''))) || '|' || upper(trim(coalesce({{ country }}, '')))
    )
{%- endmacro %}
