-- The backfill's run log: one row per run of the task. The row with backfill_complete = true is
-- the completion signal: nothing was pending any more, and the task suspended itself.
-- https://docs.snowflake.com/en/sql-reference/sql/create-table
--
-- `if not exists`: re-running the scripts keeps the log.
use role {{ owner_role }};

create table if not exists {{ database }}.{{ schema }}.{{ backfill_log_table }} (
    started_at timestamp_tz,
    finished_at timestamp_tz,
    pending_before integer,
    rows_asked integer,
    rows_answered integer,
    pending_after integer,
    backfill_complete boolean
)
comment = 'sixsense-udf: one row per backfill run; backfill_complete marks the last one';
