-- people_full_cached(email, country): never waits on 6sense. Rows already in the service's
-- cache get their value at once; the others get {"status": "pending"} and are queued, and the
-- service fetches them in the background at the 6sense rate limit. Run the query again later
-- (or MERGE only the pending rows) to pick them up. This is the function for backfills: a query
-- of 10,000 new leads is 100 minutes of 6sense quota, far past any single request's time.
-- https://cloud.google.com/bigquery/docs/remote-functions
--
-- max_batching_rows_cached (default 500) is 10 times people_full's: answering from the cache
-- takes milliseconds.
-- The noqa PRS: sqlfluff 4.5 has no grammar for REMOTE WITH CONNECTION.
create or replace function -- noqa: PRS
`{{ project }}.{{ dataset }}`.people_full_cached(email string, country string)
returns json
remote with connection `{{ connection }}`
options (
    endpoint = '{{ endpoint }}/bigquery/people/full/cached',
    max_batching_rows = {{ max_batching_rows_cached }}
);
