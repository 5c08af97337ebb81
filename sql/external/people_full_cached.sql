-- people_full_cached: the same value as people_full, but never waits on 6sense. Fresh cache
-- hits come back at once; misses come back as {"status": "pending"} and are fetched in the
-- background, so the next call (or the next dbt run) finds them. For tables too big to
-- enrich inside one query.
-- https://docs.snowflake.com/en/sql-reference/sql/create-external-function
--
-- Same overloads and the same choices as people_full.sql, except:
--   max_batch_rows      default 1000 (variable max_batch_rows_cached). No row waits on 6sense,
--                       so a batch costs only its response, about 1-2 KB of VARIANT per row:
--                       ~2 MB, well under the 10 MB Snowflake and 6 MB Lambda payload limits,
--                       in ten times fewer round trips than batches of 100.
use role {{ owner_role }};

{%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace secure external function
{{ database }}.{{ schema }}.{{ function_name }}_cached({{ signature }})
returns variant
called on null input
volatile
comment = 'sixsense-udf: 6sense data per lead from the cache; misses come back pending'
api_integration = {{ integration_name }}
{%- if auth_header %}
headers = ('{{ auth_header }}' = '{{ auth_secret }}')
{%- endif %}
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows_cached }}
compression = {{ compression }}
as '{{ gateway_url }}/snowflake/people/full/cached';
{%- endfor %}
