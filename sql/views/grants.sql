-- Lets `caller_role` read the enrichment table and the three views. Views run with their
-- owner's privileges on the table, so the grant on the table is only for reading the raw
-- VARIANT; writing the table stays with `owner_role` (or the dbt role).
-- https://docs.snowflake.com/en/sql-reference/sql/grant-privilege
use role {{ owner_role }};

grant usage on database {{ database }} to role {{ caller_role }};

grant usage on schema {{ database }}.{{ schema }} to role {{ caller_role }};

grant select on table {{ database }}.{{ schema }}.{{ enriched_table }} to role {{ caller_role }};

grant select on view {{ database }}.{{ schema }}.sixsense_people to role {{ caller_role }};

grant select on view {{ database }}.{{ schema }}.sixsense_scores to role {{ caller_role }};

grant select on view {{ database }}.{{ schema }}.sixsense_segments to role {{ caller_role }};
