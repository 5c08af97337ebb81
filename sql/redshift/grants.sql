-- Who may call people_full and read the enrichment. Redshift lets PUBLIC execute a new function
-- by default; every call can spend 6sense credits, so execution goes to `caller_group` only.
-- https://docs.aws.amazon.com/redshift/latest/dg/r_GRANT.html
-- Creating Lambda UDFs needs USAGE ON LANGUAGE EXFUNC, which stays with the owner (not granted).
revoke execute on function {{ schema }}.{{ function_name }}(varchar, varchar) from public;

revoke execute on function {{ schema }}.{{ function_name }}(
    varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar
) from public;

revoke execute on function {{ schema }}.{{ function_name }}(varchar(65535)) from public;

grant usage on schema {{ schema }} to group {{ caller_group }};

grant execute on function {{ schema }}.{{ function_name }}(varchar, varchar)
to group {{ caller_group }};

grant execute on function {{ schema }}.{{ function_name }}(
    varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar, varchar
) to group {{ caller_group }};

grant execute on function {{ schema }}.{{ function_name }}(varchar(65535))
to group {{ caller_group }};

grant select on {{ schema }}.{{ enriched_table }} to group {{ caller_group }};

grant select on {{ schema }}.sixsense_people to group {{ caller_group }};

grant select on {{ schema }}.sixsense_scores to group {{ caller_group }};

grant select on {{ schema }}.sixsense_segments to group {{ caller_group }};
