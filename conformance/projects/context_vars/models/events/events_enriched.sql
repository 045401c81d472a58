{{ config(unique_key='event_id', on_schema_change='append_new_columns') }}
select e.*, '{{ env_var("CONF_CV_REGION", "local") }}' as region
from {{ source('tracking', 'events') }} as e
{{ incremental_window('e.occurred_at') }}
  and {{ country_filter('e.country') }}
