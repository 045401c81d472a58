{%- set cols = rw_utils.get_filtered_columns_in_relation(ref('stg_refunds'), except=['amount']) -%}
select {{ cols | length }} as n_columns, '{{ cols | join(",") }}' as names
