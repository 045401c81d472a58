select
    event_id,
    event_type,
    user_id,
    {{ mp_utils.day_of('received_at') }} as event_day,
    '{{ var("currency") }}' as currency
from {{ source('tracking', 'events') }}
where {{ recent_events_filter('received_at') }}
  and event_type in ({% for t in var('event_types') %}'{{ t }}'{% if not loop.last %}, {% endif %}{% endfor %})
