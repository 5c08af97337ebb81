-- people_full_estimate: a cost preview before a big query. Same rows in as people_full, one
-- VARIANT per row out describing what enriching that lead would cost (POST
-- /snowflake/people/full/estimate); it does not spend 6sense credits.
-- https://docs.snowflake.com/en/sql-reference/sql/create-external-function
--
-- Same overloads and the same choices as people_full.sql, except:
--   max_batch_rows      default 1000 (variable max_batch_rows_cached): nothing waits on 6sense,
--                       so only the response size bounds a batch (see people_full_cached.sql).
use role {{ owner_role }};

{%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace secure external function
{{ database }}.{{ schema }}.{{ function_name }}_estimate({{ signature }})
returns variant
called on null input
volatile
comment = 'sixsense-udf: what enriching these leads would cost; spends no 6sense credits'
api_integration = {{ integration_name }}
{%- if auth_header %}
headers = ('{{ auth_header }}' = '{{ auth_secret }}')
{%- endif %}
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows_cached }}
compression = {{ compression }}
as '{{ gateway_url }}/snowflake/people/full/estimate';
{%- endfor %}
