-- The database that holds the functions, the enrichment table and the views.
-- `if not exists`: re-running the scripts never drops data.
-- https://docs.snowflake.com/en/sql-reference/sql/create-database
use role {{ owner_role }};

create database if not exists {{ database }}
comment = 'sixsense-udf: 6sense enrichment functions and views';
