-- people_full_cached as an SPCS service function: never waits on 6sense. Fresh cache hits come
-- back at once; misses come back as {"status": "pending"} and are fetched in the background.
-- https://docs.snowflake.com/en/sql-reference/sql/create-function-spcs
--
-- Same overloads and the same choices as spcs/people_full.sql, except:
--   max_batch_rows      default 1000 (variable max_batch_rows_cached): no row waits on 6sense,
--                       so only the response size (about 1-2 KB per row) bounds a batch.
--   batch_timeout_secs  300: this route answers at once, so a batch still unanswered after five
--                       minutes means the service is down; fail the query rather than hang.
--
-- The noqa on SERVICE = ...: sqlfluff 4.5 cannot parse service functions.
-- It reports the overloads' SERVICE = at the line where their loop starts: one noqa there too.
use role {{ owner_role }};
-- noqa: PRS {%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace function
{{ database }}.{{ schema }}.{{ function_name }}_cached({{ signature }})
returns variant
called on null input
volatile
service = {{ database }}.{{ schema }}.{{ service_name }} -- noqa: PRS
endpoint = {{ endpoint_name }}
comment = 'sixsense-udf: 6sense data per lead from the cache; misses come back pending'
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows_cached }}
max_batch_retries = 3
on_batch_failure = abort
batch_timeout_secs = 300
as '/snowflake/people/full/cached';
{%- endfor %}
