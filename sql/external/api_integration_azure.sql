-- API integration for Azure API Management: Snowflake authenticates to the APIM instance with
-- an Azure AD (Entra ID) app registration in tenant `azure_tenant_id`.
-- https://docs.snowflake.com/en/sql-reference/sql/create-api-integration
--
-- `if not exists`, never `or replace`: a re-created integration gets a new consent URL and
-- service principal, which must then be granted again in Azure. The `alter` that follows brings
-- an existing integration up to date instead.
use role {{ admin_role }};

create api integration if not exists {{ integration_name }}
api_provider = azure_api_management
azure_tenant_id = '{{ azure_tenant_id }}'
azure_ad_application_id = '{{ azure_app_id }}'
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true
comment = 'sixsense-udf: 6sense enrichment through Azure API Management';

-- https://docs.snowflake.com/en/sql-reference/sql/alter-api-integration
-- The noqa below: sqlfluff 4.5 has no grammar for ALTER API INTEGRATION.
alter api integration {{ integration_name }} set -- noqa: PRS
azure_ad_application_id = '{{ azure_app_id }}'
{%- if api_key %}
api_key = '{{ api_key }}'
{%- endif %}
api_allowed_prefixes = ('{{ gateway_url }}/')
enabled = true;

-- The role that creates the external functions needs USAGE on the integration.
grant usage on integration {{ integration_name }} to role {{ owner_role }};

-- Prints AZURE_CONSENT_URL and AZURE_MULTI_TENANT_APP_NAME: open the consent URL once as a
-- tenant admin, then allow that app in the APIM validate-jwt policy.
-- https://docs.snowflake.com/en/sql-reference/sql/desc-integration
describe integration {{ integration_name }};
