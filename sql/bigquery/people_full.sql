-- people_full(email, country): 6sense firmographics, scores and segments for each lead, as one
-- JSON value per row (the output object of DESIGN.md). A BigQuery remote function: BigQuery
-- POSTs batches of calls to the service on Cloud Run, /bigquery/people/full, signed with the
-- connection's service account.
-- https://cloud.google.com/bigquery/docs/remote-functions
--
-- BigQuery has no function overloading, so each argument list is a function of its own:
--   people_full(email, country)                                  this file
--   people_full_fields(email, country, website, company, title, leadsource, firstname,
--                      lastname, role, industry)                 people_full_fields.sql
--   people_full_lead(lead json)                                  people_full_lead.sql
--   people_full_cached(email, country)                           people_full_cached.sql
-- The service tells them apart by the number of arguments, so they share one endpoint.
--
-- Every option below is chosen, not defaulted:
--   returns json         the output object with every key, read with JSON_VALUE or dot syntax;
--                        the views (sixsense_people, _scores, _segments) type every key.
--   max_batching_rows    default 50. 6sense allows about 100 calls a minute per token, and a
--                        request must answer within the service's UDF_SYNC_BUDGET_S (BigQuery
--                        has no asynchronous protocol): 50 new leads are half a minute of
--                        quota. Rows not fetched in time come back with status `error` and
--                        cost nothing; people_full_cached is the function for backfills.
--
-- The noqa PRS: sqlfluff 4.5 has no grammar for REMOTE WITH CONNECTION.
create or replace function -- noqa: PRS
`{{ project }}.{{ dataset }}`.people_full(email string, country string)
returns json
remote with connection `{{ connection }}`
options (
    endpoint = '{{ endpoint }}/bigquery/people/full',
    max_batching_rows = {{ max_batching_rows }}
);
