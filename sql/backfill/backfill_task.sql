-- The task that runs one backfill step every backfill_every_minutes minutes until nothing is
-- pending (the step then suspends it). Created suspended, as every task is: start it with
--   alter task <database>.<schema>.<backfill_task> resume;
-- https://docs.snowflake.com/en/sql-reference/sql/create-task
--
-- Every few minutes, not continuously: each step only collects what the service fetched in
-- the background since the last one (about 100 leads a minute at 6sense's quota), so a step
-- a minute would mostly re-ask rows that are still pending.
-- `if not exists`: re-running the scripts neither stops nor resets a running backfill.
use role {{ owner_role }};

create task if not exists {{ database }}.{{ schema }}.{{ backfill_task }}
    warehouse = {{ backfill_warehouse }}
    schedule = '{{ backfill_every_minutes }} MINUTE'
    comment = 'sixsense-udf: re-asks pending rows until none are left, then suspends itself'
as
    call {{ database }}.{{ schema }}.{{ backfill_task }}_step();
