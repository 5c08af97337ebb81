{#-
    one_row_per(model, columns): fails with the duplicated key values when more than one row of
    `model` shares the same `columns` (a unique test over several columns, without dbt-utils).
-#}
{% test one_row_per(model, columns) %}
    {%- if columns is string or columns | length == 0 -%}
        {{ exceptions.raise_compiler_error(
            "In one_row_per(): columns must be a non-empty list of column names."
        ) }}
    {%- endif %}

with keyed as (
    select
        {{ columns | join(", ") }},
        count(*) as row_count
    from {{ model }}
    group by {{ columns | join(", ") }}
),

final as (
    select * from keyed
    where row_count > 1
)

select * from final
{% endtest %}
