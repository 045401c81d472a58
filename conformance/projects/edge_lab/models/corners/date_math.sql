{%- set dt = modules.datetime -%}
{%- set d = dt.date(2024, 2, 28) -%}
{%- set ts = dt.datetime(2024, 3, 10, 6, 30, 0) -%}
{%- set week = dt.timedelta(days=7) -%}
select
    '{{ d + dt.timedelta(days=2) }}' as d_plus,
    '{{ d - dt.timedelta(days=var('edge_window_days')) }}' as d_minus,
    '{{ dt.timedelta(days=1) + d }}' as delta_plus_date,
    '{{ ts + dt.timedelta(hours=20) }}' as ts_plus,
    '{{ ts - dt.timedelta(minutes=45, seconds=30) }}' as ts_minus,
    '{{ ts - dt.datetime(2024, 3, 9, 4, 0, 0) }}' as ts_diff,
    '{{ d - dt.date(2024, 1, 1) }}' as d_diff,
    {{ (d - dt.date(2024, 1, 1)).days }} as d_diff_days,
    '{{ week + week }}' as two_weeks,
    '{{ week - dt.timedelta(days=8) }}' as negative_delta,
    '{{ week * 2 }}' as week_times_two,
    '{{ -week }}' as minus_week,
    '{{ (ts + week).strftime("%Y-%m-%d") }}' as next_week,
    '{{ d < d + week }}' as ordered,
    '{{ (run_started_at - dt.timedelta(days=1)).year > 2000 }}' as yesterday_sane,
    '{{ (run_started_at - run_started_at).total_seconds() }}' as zero_delta
