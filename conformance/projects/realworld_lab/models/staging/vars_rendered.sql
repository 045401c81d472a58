{{ config(schema=var('rw_staging_schema'), tags=[var('rw_lookback')]) }}
select
    '{{ var("rw_start_date") }}' as start_date,
    {{ var("rw_lookback") }} as lookback_days,
    '{{ var("rw_list") | join(",") }}' as list_items,
    '{{ var("rw_plain") }}' as plain,
    '{{ var("rw_nested") }}' as nested,
    '{{ var("rw_cli_label") }}' as cli_label,
    '{{ var("rw_start_date") is string }}' as is_text,
    '{{ var("rw_missing", "{{ not rendered }}") }}' as default_kept
