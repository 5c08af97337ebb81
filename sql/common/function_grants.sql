-- Lets `caller_role` call every overload of the three functions. Callers need USAGE on the
-- database, the schema and each function; they need nothing on the API integration or the
-- service, and (the functions being SECURE where Snowflake allows it) cannot read the URL or
-- the headers.
-- https://docs.snowflake.com/en/sql-reference/sql/grant-privilege
use role {{ owner_role }};

grant usage on database {{ database }} to role {{ caller_role }};

grant usage on schema {{ database }}.{{ schema }} to role {{ caller_role }};
{%- for suffix in ["", "_cached", "_estimate"] %}
{%- for types in signature_types %}

grant usage on function {{ database }}.{{ schema }}.{{ function_name }}{{ suffix }}({{ types }})
to role {{ caller_role }};
{%- endfor %}
{%- endfor %}
