-- External access integration: the account-level object that lets the service use the egress
-- rule. Integrations need an account administrator (`admin_role`); the service owner then
-- gets USAGE on it.
-- https://docs.snowflake.com/en/sql-reference/sql/create-external-access-integration
--
-- No ALLOWED_AUTHENTICATION_SECRETS: that list is for UDFs and procedures that read secrets
-- in their handler code; a service gets its secret through the specification instead.
-- `if not exists`: the service refers to the integration by name.
-- The noqa below: sqlfluff 4.5 has no grammar for this statement.
use role {{ admin_role }};

create external access integration if not exists {{ eai_name }} -- noqa: PRS
allowed_network_rules = ({{ database }}.{{ schema }}.{{ network_rule_name }})
enabled = true
comment = 'sixsense-udf: lets the service call the 6sense API';

grant usage on integration {{ eai_name }} to role {{ owner_role }};
