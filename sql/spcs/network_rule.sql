-- Egress for the service: HTTPS to the 6sense API host and nowhere else. Containers have no
-- internet access at all without an external access integration built on a rule like this.
-- https://docs.snowflake.com/en/sql-reference/sql/create-network-rule
--
-- `if not exists`: the external access integration refers to this rule, and the value never
-- changes between runs (change `upstream_host` with ALTER NETWORK RULE ... SET VALUE_LIST).
use role {{ owner_role }};

create network rule if not exists {{ database }}.{{ schema }}.{{ network_rule_name }}
mode = egress
type = host_port
value_list = ('{{ upstream_host }}:443')
comment = 'sixsense-udf: HTTPS to the 6sense API only';
