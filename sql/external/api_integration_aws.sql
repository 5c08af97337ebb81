-- API integration for Amazon API Gateway (targets aws and aws-private): Snowflake signs every
-- call with SigV4 after assuming the IAM role `aws_role_arn` (terraform/aws output
-- snowflake_role_arn). api_provider is aws_api_gateway or aws_private_api_gateway.
-- https://docs.snowflake.com/en/sql-reference/sql/create-api-integration
--
-- `if not exists`, never `or replace`: a re-created integration gets a new external id, which
-- breaks the IAM role's trust policy until terraform is applied again. The `alter` that follows
-- brings an existing integration up to date instead, keeping its external id.
use role {{ admin_role }};

create api integration if not exists {{ integration_name }}
api_provider = {{ api_provider }}
api_aws_role_arn = '{{ aws_role_arn }}'
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true
comment = 'sixsense-udf: 6sense enrichment through Amazon API Gateway';

-- https://docs.snowflake.com/en/sql-reference/sql/alter-api-integration
-- The noqa below: sqlfluff 4.5 has no grammar for ALTER API INTEGRATION.
alter api integration {{ integration_name }} set -- noqa: PRS
api_aws_role_arn = '{{ aws_role_arn }}'
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true;

-- The role that creates the external functions needs USAGE on the integration.
grant usage on integration {{ integration_name }} to role {{ owner_role }};

-- Prints API_AWS_IAM_USER_ARN and API_AWS_EXTERNAL_ID: terraform/aws needs both for the role's
-- trust policy (docs/snowflake-setup.md, step 3).
-- https://docs.snowflake.com/en/sql-reference/sql/desc-integration
describe integration {{ integration_name }};
