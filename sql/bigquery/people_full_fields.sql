-- people_full_fields(email, country, website, company, title, leadsource, firstname, lastname,
-- role, industry): people_full with every field 6sense matches on, positional like the service
-- reads them (DESIGN.md, "Input rows"). Pass NULL for what you don't have; NULL and '' are absent.
-- Only email, country, website, company and title change the match (and the cache key).
-- https://cloud.google.com/bigquery/docs/remote-functions
--
-- Options as in people_full.sql (returns json, max_batching_rows).
-- The noqa PRS: sqlfluff 4.5 has no grammar for REMOTE WITH CONNECTION.
create or replace function -- noqa: PRS
`{{ project }}.{{ dataset }}`.people_full_fields(
    email string,
    country string,
    website string,
    company string,
    title string,
    leadsource string,
    firstname string,
    lastname string,
    role string,
    industry string
)
returns json
remote with connection `{{ connection }}`
options (
    endpoint = '{{ endpoint }}/bigquery/people/full',
    max_batching_rows = {{ max_batching_rows }}
);
