-- people_full as an SPCS service function: the same route, rows and VARIANT as the external
-- function, but Snowflake calls the container directly, with no cloud gateway in between.
-- https://docs.snowflake.com/en/sql-reference/sql/create-function-spcs
--
-- Three overloads, positional like the service reads them (DESIGN.md, "Input rows"):
--   people_full(email, country)
--   people_full(email, country, website, company, title, leadsource, firstname, lastname,
--               role, industry)
--   people_full(lead object)
--
-- Every property below is chosen, not defaulted (compare external/people_full.sql):
--   not secure          service functions have no SECURE form, and nothing to hide: no URL,
--                       no headers, and the endpoint is not public.
--   no headers, no compression
--                       not part of the service-function syntax; no shared secret is needed
--                       because only roles with USAGE on these functions reach the endpoint.
--   called on null input
--                       a NULL email must come back as status invalid_input, and a NULL country
--                       may fall back to SIXSENSE_DEFAULT_COUNTRY; STRICT would skip the call.
--   volatile            the answer changes with time (6sense data, the cache, pending rows).
--   context_headers     current_account and current_user, for the service's logs; never
--                       current_statement (personal data, size).
--   max_batch_rows      default 100: a batch of cache misses is at most a minute of the
--                       default 100 calls/minute 6sense quota (see external/people_full.sql).
--   max_batch_retries   3, Snowflake's default, written down: Snowflake resends a batch on 404,
--                       429 and 5xx with the same rows; the service never pays twice for a lead.
--   on_batch_failure    abort: RETURN_NULL would turn a broken service into NULL rows that
--                       look like data. Per-row problems already come back as a row status.
--   batch_timeout_secs  3600, the default, written down: it covers the 202/GET polling too, and
--                       an hour of quota is about 6,000 cache misses in flight at once.
--
-- The noqa on SERVICE = ...: sqlfluff 4.5 cannot parse service functions.
-- It reports the overloads' SERVICE = at the line where their loop starts: one noqa there too.
use role {{ owner_role }};
-- noqa: PRS {%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace function
{{ database }}.{{ schema }}.{{ function_name }}({{ signature }})
returns variant
called on null input
volatile
service = {{ database }}.{{ schema }}.{{ service_name }} -- noqa: PRS
endpoint = {{ endpoint_name }}
comment = 'sixsense-udf: 6sense firmographics, scores and segments per lead; waits for 6sense'
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows }}
max_batch_retries = 3
on_batch_failure = abort
batch_timeout_secs = 3600
as '/snowflake/people/full';
{%- endfor %}
