select
    event_day,
    '{{ var("region") }}' as region,
    {{ mp_utils.pivot('event_type', var('event_types'), prefix='n_') }}
from {{ ref('stg_events') }}
group by 1, 2
