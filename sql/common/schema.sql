-- The schema for every sixsense-udf object (functions, table, views).
-- https://docs.snowflake.com/en/sql-reference/sql/create-schema
use role {{ owner_role }};

create schema if not exists {{ database }}.{{ schema }}
comment = 'sixsense-udf: 6sense enrichment functions and views';
