-- people_full_lead(lead json): people_full with the lead as one JSON object, for callers that
-- build it with JSON_OBJECT (keys: email, country, website, company, title, leadsource,
-- firstname, lastname, role, industry; any other key makes that row invalid_input):
--   people_full_lead(json_object('email', email, 'country', country, 'website', website))
-- The service accepts the object as a JSON value or as its text, whichever BigQuery sends.
-- https://cloud.google.com/bigquery/docs/remote-functions
--
-- Options as in people_full.sql (returns json, max_batching_rows).
-- The noqa PRS: sqlfluff 4.5 has no grammar for REMOTE WITH CONNECTION.
create or replace function -- noqa: PRS
`{{ project }}.{{ dataset }}`.people_full_lead(lead json)
returns json
remote with connection `{{ connection }}`
options (
    endpoint = '{{ endpoint }}/bigquery/people/full',
    max_batching_rows = {{ max_batching_rows }}
);
