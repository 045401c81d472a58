-- disabled by the root project (models: mp_events: events_hourly: +enabled: false)
select date_trunc('hour', event_day) as hour, count(*) as n from {{ ref('stg_events') }} group by 1
