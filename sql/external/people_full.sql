-- people_full: 6sense firmographics, scores and segments for each lead, one VARIANT per row.
-- Waits for 6sense: POST /snowflake/people/full answers 200 when the batch is done within the
-- service's sync budget, else 202, and Snowflake polls the same URL with GET until it is done.
-- https://docs.snowflake.com/en/sql-reference/sql/create-external-function
--
-- Three overloads, positional like the service reads them (DESIGN.md, "Input rows"):
--   people_full(email, country)
--   people_full(email, country, website, company, title, leadsource, firstname, lastname,
--               role, industry)
--   people_full(lead object)   -- object_construct('email', ..., 'country', ...)
--
-- Every property below is chosen, not defaulted:
--   secure              hides the gateway URL, the HEADERS (they carry the shared secret) and
--                       the CONTEXT_HEADERS from every role except the owner.
--   called on null input
--                       a NULL email must come back as a row with status invalid_input, and a
--                       NULL country may fall back to SIXSENSE_DEFAULT_COUNTRY; STRICT would
--                       return a bare SQL NULL without asking the service.
--   volatile            the answer changes with time (6sense data, the cache, pending rows);
--                       IMMUTABLE would let Snowflake reuse an old answer.
--   headers             only when a shared secret is configured (variables auth_header and
--                       auth_secret); Snowflake sends it as sf-custom-<auth_header>, so the
--                       service runs with UDF_AUTH_HEADER=sf-custom-<auth_header>.
--   context_headers     current_account and current_user: who asked, for the service's logs.
--                       Not current_statement: the query text can hold personal data and is
--                       large (all headers together must stay under 8 KB).
--   max_batch_rows      default 100. 6sense allows about 100 calls a minute per token, so a
--                       batch of cache misses costs at most a minute of quota: it finishes in
--                       Snowflake's 600 s async window even while a few batches queue behind
--                       each other, and a retried batch repeats little. Without it Snowflake
--                       may send ~4,000 rows in one batch: 40 minutes of quota, a sure timeout.
--   compression         auto on AWS (= GZIP: API Gateway inflates the request for the service,
--                       and the JSON response shrinks several-fold, far from the 10 MB batch
--                       limit); none on Azure and GCP, whose gateways pass bodies through as
--                       they are (variable compression overrides either).
use role {{ owner_role }};

{%- for signature in signatures %}

-- ({{ signature_labels[loop.index0] }})
create or replace secure external function
{{ database }}.{{ schema }}.{{ function_name }}({{ signature }})
returns variant
called on null input
volatile
comment = 'sixsense-udf: 6sense firmographics, scores and segments per lead; waits for 6sense'
api_integration = {{ integration_name }}
{%- if auth_header %}
headers = ('{{ auth_header }}' = '{{ auth_secret }}')
{%- endif %}
context_headers = (current_account, current_user)
max_batch_rows = {{ max_batch_rows }}
compression = {{ compression }}
as '{{ gateway_url }}/snowflake/people/full';
{%- endfor %}
