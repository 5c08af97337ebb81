{#-
    people_full(email, country, ..., lead=none, route=none, function_name=none)

    The SQL expression that calls the sixsense-udf function for one lead: one VARIANT with the
    6sense firmographics, scores and segments (keys in DESIGN.md, "Output value").
    Arguments are SQL expressions (column names, literals), like dbt-utils' macros.
    Picks the overload from what is given: (email, country) when only those are given, all
    ten fields (missing ones as null) when any other field is given, (lead object) for `lead`.
    Docs: README.md of this package, macros/people_full.yml, docs/snowflake-setup.md.
-#}
{% macro people_full(
    email=none, country=none, website=none, company=none, title=none, leadsource=none,
    firstname=none, lastname=none, role=none, industry=none,
    lead=none, route=none, function_name=none
) -%}
    {%- set fields = {
        "email": email, "country": country, "website": website, "company": company,
        "title": title, "leadsource": leadsource, "firstname": firstname,
        "lastname": lastname, "role": role, "industry": industry,
    } -%}
    {%- set implementation = adapter.dispatch("people_full", "sixsense_udf") -%}
    {{ return(implementation(fields, lead, route, function_name)) }}
{%- endmacro %}


{% macro default__people_full(fields, lead, route, function_name) -%}
    {{ exceptions.raise_compiler_error(
        "In people_full(): sixsense-udf functions exist only on Snowflake, "
        ~ "not on the '" ~ target.type ~ "' adapter."
    ) }}
{%- endmacro %}


{% macro snowflake__people_full(fields, lead, route, function_name) -%}
    {%- set order = [
        "email", "country", "website", "company", "title",
        "leadsource", "firstname", "lastname", "role", "industry",
    ] -%}
    {%- set suffixes = {"full": "", "cached": "_cached", "estimate": "_estimate"} -%}
    {%- set route = route or var("sixsense_route", "full") -%}
    {%- if route not in suffixes -%}
        {{ exceptions.raise_compiler_error(
            "In people_full(): route must be one of full, cached, estimate; got '"
            ~ route ~ "'."
        ) }}
    {%- endif -%}
    {%- set function = (function_name or var("sixsense_function", "sixsense.udf.people_full"))
        ~ suffixes[route] -%}
    {%- set given = [] -%}
    {%- for name in order if fields[name] is not none -%}
        {%- do given.append(name) -%}
    {%- endfor -%}
    {%- if lead is not none -%}
        {%- if given -%}
            {{ exceptions.raise_compiler_error(
                "In people_full(): pass either lead (one OBJECT) or the separate fields, "
                ~ "not both; got lead and " ~ given | join(", ") ~ "."
            ) }}
        {%- endif -%}
        {{ function }}({{ lead }})
    {%- elif fields["email"] is none -%}
        {{ exceptions.raise_compiler_error(
            "In people_full(): email is required (an expression such as 'leads.email'), "
            ~ "or pass lead=object_construct(...)."
        ) }}
    {%- elif given | reject("in", ["email", "country"]) | list | length == 0 -%}
        {{ function }}({{ fields["email"] }}, {{ fields["country"] or "null" }})
    {%- else -%}
        {%- set arguments = [] -%}
        {%- for name in order -%}
            {%- do arguments.append(fields[name] if fields[name] is not none else "null") -%}
        {%- endfor -%}
        {{ function }}({{ arguments | join(", ") }})
    {%- endif -%}
{%- endmacro %}
