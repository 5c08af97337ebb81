-- One backfill step: re-ask up to backfill_batch_rows `pending` rows of the enrichment table
-- through <function_name>_cached (which never waits on 6sense: it answers what the service
-- fetched since, and `pending` again for the rest), merge the answers, log the run, and suspend
-- the task when nothing is pending any more.
-- https://docs.snowflake.com/en/developer-guide/snowflake-scripting/index
-- https://docs.snowflake.com/en/sql-reference/sql/create-procedure
--
-- Distinct (email, country) pairs are asked once each: a lead in the table twice costs one
-- function row, and MERGE needs one source row per target key.
-- The statements between `-- step:` markers are also run on fakesnow by the tests
-- (tests/sql/test_backfill.py), with the :variables bound; keep them plain SQL.
use role {{ owner_role }};

create or replace procedure {{ database }}.{{ schema }}.{{ backfill_task }}_step()
returns varchar
language sql
comment = 'sixsense-udf: one backfill step (task {{ backfill_task }})'
execute as owner
as
$$
declare
    started_at timestamp_tz default current_timestamp();
    pending_before integer default 0;
    rows_asked integer default 0;
    pending_after integer default 0;
begin
    -- step: count pending
    select count(*) into :pending_before
    from {{ database }}.{{ schema }}.{{ enriched_table }}
    where enrichment:status::varchar = 'pending';

    if (pending_before > 0) then
        -- step: ask and merge
        merge into {{ database }}.{{ schema }}.{{ enriched_table }} as target
        using (
            select
                asked.email,
                asked.country,
                {{ database }}.{{ schema }}.{{ function_name }}_cached(asked.email, asked.country)
                    as enrichment
            from (
                select distinct email, country
                from {{ database }}.{{ schema }}.{{ enriched_table }}
                where enrichment:status::varchar = 'pending'
                limit {{ backfill_batch_rows }}
            ) as asked
        ) as answers
            on target.email = answers.email and equal_null(target.country, answers.country)
        when matched and target.enrichment:status::varchar = 'pending' then update set
            enrichment = answers.enrichment,
            enriched_at = current_timestamp();
        rows_asked := sqlrowcount;

        -- step: count pending
        select count(*) into :pending_after
        from {{ database }}.{{ schema }}.{{ enriched_table }}
        where enrichment:status::varchar = 'pending';
    end if;

    -- step: log the run
    insert into {{ database }}.{{ schema }}.{{ backfill_log_table }} (
        started_at, finished_at, pending_before, rows_asked, rows_answered, pending_after,
        backfill_complete
    )
    select
        :started_at,
        current_timestamp(),
        :pending_before,
        :rows_asked,
        greatest(:pending_before - :pending_after, 0),
        :pending_after,
        :pending_after = 0;

    if (pending_after = 0) then
        alter task {{ database }}.{{ schema }}.{{ backfill_task }} suspend;
        return 'backfill complete: nothing pending; task suspended';
    end if;
    return pending_after || ' rows still pending';
end;
$$;
