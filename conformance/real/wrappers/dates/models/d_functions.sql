select
    {{ dbt_date.today() }} as today,
    {{ dbt_date.now() }} as now_ts,
    {{ dbt_date.n_days_ago(7) }} as week_ago,
    {{ dbt_date.n_months_away(2, 'created_at') }} as two_months,
    {{ dbt_date.day_of_week('created_at') }} as dow,
    {{ dbt_date.day_name('created_at', short=false) }} as day_name,
    {{ dbt_date.month_name('created_at') }} as month_name,
    {{ dbt_date.iso_week_start('created_at') }} as iso_week_start,
    {{ dbt_date.convert_timezone('created_at', 'UTC') }} as utc_at,
    {{ dbt_date.to_unixtimestamp('created_at') }} as epoch,
    {{ dbt_date.from_unixtimestamp('epoch_col') }} as from_epoch,
    {{ dbt_date.last_week() }} as last_week,
    {{ dbt_date.periods_since('created_at', period_name='day') }} as days_since
from (select current_timestamp as created_at, 0 as epoch_col) t
