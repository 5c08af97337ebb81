-- API integration for Google Cloud API Gateway: Snowflake sends a Google-signed JWT whose
-- audience is `google_audience` (the gateway's managed service name).
-- https://docs.snowflake.com/en/sql-reference/sql/create-api-integration
--
-- `if not exists`, never `or replace`: a re-created integration gets a new service account,
-- which the gateway's security definition must then name again. The `alter` that follows brings
-- an existing integration up to date instead (the audience itself cannot be altered).
use role {{ admin_role }};

create api integration if not exists {{ integration_name }}
api_provider = google_api_gateway
google_audience = '{{ google_audience }}'
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true
comment = 'sixsense-udf: 6sense enrichment through Google Cloud API Gateway';

-- https://docs.snowflake.com/en/sql-reference/sql/alter-api-integration
-- The noqa below: sqlfluff 4.5 has no grammar for ALTER API INTEGRATION.
alter api integration {{ integration_name }} set -- noqa: PRS
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true;

-- The role that creates the external functions needs USAGE on the integration.
grant usage on integration {{ integration_name }} to role {{ owner_role }};

-- Prints API_GCP_SERVICE_ACCOUNT: the gateway's OpenAPI config must accept JWTs from it.
-- https://docs.snowflake.com/en/sql-reference/sql/desc-integration
describe integration {{ integration_name }};
