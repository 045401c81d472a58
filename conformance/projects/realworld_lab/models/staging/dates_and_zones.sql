{#- modules.datetime / modules.pytz / run_started_at, with results that do not depend on the clock -#}
{%- set d = modules.datetime.date(2024, 2, 27) -%}
{%- set dt = modules.datetime.datetime(2024, 3, 10, 6, 30, 0) -%}
{%- set ny = modules.pytz.timezone('America/New_York') -%}
{%- set parsed = modules.datetime.datetime.strptime('2021-12-31 23:59:58', '%Y-%m-%d %H:%M:%S') -%}
select
    '{{ d }}' as d,
    '{{ dt }}' as dt,
    '{{ dt.isoformat() }}' as dt_iso,
    '{{ d.weekday() }}/{{ d.isoweekday() }}' as weekdays,
    '{{ dt.replace(day=1, hour=0).strftime("%Y-%m-%d %H:%M") }}' as month_start,
    '{{ parsed.strftime("%d.%m.%Y %H:%M:%S") }}' as parsed,
    '{{ modules.datetime.timedelta(days=2, hours=3) }}' as delta_text,
    {{ modules.datetime.timedelta(hours=36).total_seconds() }} as delta_seconds,
    {{ modules.datetime.timedelta(hours=36).days }} as delta_days,
    '{{ ny.localize(dt).isoformat() }}' as localized,
    '{{ ny.localize(dt).astimezone(modules.pytz.utc).isoformat() }}' as in_utc,
    '{{ run_started_at.astimezone(ny).tzinfo is not none }}' as aware,
    '{{ run_started_at.astimezone(modules.pytz.utc).year > 2000 }}' as sane_year
