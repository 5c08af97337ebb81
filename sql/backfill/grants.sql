-- A task runs as its owner, who needs EXECUTE TASK on the account; callers may read the log.
-- https://docs.snowflake.com/en/user-guide/tasks-intro#task-security
use role {{ admin_role }};

grant execute task on account to role {{ owner_role }};

use role {{ owner_role }};

grant select on table {{ database }}.{{ schema }}.{{ backfill_log_table }}
to role {{ caller_role }};
