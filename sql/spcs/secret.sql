-- The 6sense API token, as a GENERIC_STRING secret. The service specification (service.sql)
-- hands it to the container as the environment variable SIXSENSE_API_TOKEN, so the token is
-- never part of the image or the specification text.
-- https://docs.snowflake.com/en/sql-reference/sql/create-secret
--
-- `if not exists` then `alter`: a changed token is written in place, and the objects that
-- refer to the secret by name keep working. A running service reads env-var secrets only at
-- start, so restart it after changing the token (docs/snowflake-setup.md).
use role {{ owner_role }};

create secret if not exists {{ database }}.{{ schema }}.{{ secret_name }}
type = generic_string
secret_string = '{{ sixsense_api_token }}'
comment = 'sixsense-udf: the 6sense API token (Authorization: Token ...)';

-- https://docs.snowflake.com/en/sql-reference/sql/alter-secret
alter secret {{ database }}.{{ schema }}.{{ secret_name }}
set secret_string = '{{ sixsense_api_token }}';
