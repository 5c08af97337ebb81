-- people_full_estimate as an SPCS service function: a cost preview before a big query. Same
-- rows in as people_full, one VARIANT per row out describing what enriching that lead would
-- cost (POST /snowflake/people/full/estimate); it does not spend 6sense credits.
-- https://docs.snowflake.com/en/sql-reference/sql/create-function-spcs
--
-- Same overloads and the same choices as spcs/people_full.sql, except:
--   max_batch_rows      default 1000 (variable max_batch_rows_cached), as for the cached route.
--   batch_timeout_secs  300: nothing here waits on 6sense (see spcs/people_full_cached.sql).
--
-- The noqa on SERVICE = ...: sqlfluff 4.5 cannot parse service functions.
-- It reports the overloads' SERVICE = at the line where their loop starts: one noqa there too.
use role {{ owner_role }};
-- noqa: PRS {%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace function
{{ database }}.{{ schema }}.{{ function_name }}_estimate({{ signature }})
returns variant
called on null input
volatile
service = {{ database }}.{{ schema }}.{{ service_name }} -- noqa: PRS
endpoint = {{ endpoint_name }}
comment = 'sixsense-udf: what enriching these leads would cost; spends no 6sense credits'
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows_cached }}
max_batch_retries = 3
on_batch_failure = abort
batch_timeout_secs = 300
as '/snowflake/people/full/estimate';
{%- endfor %}
