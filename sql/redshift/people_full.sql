-- people_full: 6sense firmographics, scores and segments for each lead, as the JSON text of one
-- people_full value per row; JSON_PARSE(...) makes it the SUPER that the views read.
-- A Lambda UDF: Redshift invokes the Lambda function (handler
-- udf_service.redshift_lambda.handler) with batches of rows, through the IAM role.
-- https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_EXTERNAL_FUNCTION.html
--
-- Three overloads, positional like the service reads them (DESIGN.md, "Input rows"):
--   people_full(email, country)
--   people_full(email, country, website, company, title, leadsource, firstname, lastname,
--               role, industry)
--   people_full(lead)    -- one JSON object as text:
--                        -- json_serialize(object('email', email, 'country', country))
--
-- Every property below is chosen, not defaulted:
--   returns varchar(65535)  Lambda UDFs cannot return SUPER; the value is JSON text, at most
--                        65535 bytes (a longer one comes back as that row's `error`).
--   volatile             the answer changes with time (6sense data, the cache); STABLE would
--                        let Redshift reuse an answer within a statement.
--   retry_timeout 20000  the default, written down: Redshift retries a throttled invocation
--                        (TooManyRequestsException) for up to 20 s. Retried batches cost
--                        nothing twice: the service's cache is shared (UDF_STATE_URL=redis://).
--   max_batch_rows       default 100. 6sense allows about 100 calls a minute per token, so a
--                        batch of new leads costs at most a minute of quota and finishes well
--                        within the Lambda timeout even when a few batches share the quota.
--                        Rows not fetched before the Lambda's time runs out come back with
--                        status `error` and cost nothing.
--   max_batch_size 5 mb  the default, written down: it bounds the arguments Redshift sends.
--                        The answer (about 3 KB per row) must stay under Lambda's 6 MB
--                        response limit; max_batch_rows is what keeps it there (100 rows:
--                        about 300 KB; keep max_batch_rows at 1,000 or below).
--
-- The noqa PRS on MAX_BATCH_ROWS: sqlfluff 4.5's redshift grammar ends at RETRY_TIMEOUT, so the
-- rest of this file is not parsed (the three statements differ only in their arguments).
create or replace external function {{ schema }}.{{ function_name }} (varchar, varchar)
returns varchar(65535)
volatile
lambda '{{ lambda_function }}'
iam_role '{{ iam_role }}'
retry_timeout 20000
max_batch_rows {{ max_batch_rows }} -- noqa: PRS
max_batch_size 5 mb;

create or replace external function {{ schema }}.{{ function_name }} (
    varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar
)
returns varchar(65535)
volatile
lambda '{{ lambda_function }}'
iam_role '{{ iam_role }}'
retry_timeout 20000
max_batch_rows {{ max_batch_rows }}
max_batch_size 5 mb;

create or replace external function {{ schema }}.{{ function_name }} (varchar(65535))
returns varchar(65535)
volatile
lambda '{{ lambda_function }}'
iam_role '{{ iam_role }}'
retry_timeout 20000
max_batch_rows {{ max_batch_rows }}
max_batch_size 5 mb;
