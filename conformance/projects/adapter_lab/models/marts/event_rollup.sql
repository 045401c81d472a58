select
    kind,
    {{ dbt.listagg('event_id', "','", "order by event_id", 3) }} as first_ids,
    {{ dbt.listagg('event_id', "', '") }} as all_ids,
    {{ dbt.bool_or('is_test') }} as any_test,
    {{ dbt.any_value('label') }} as some_label,
    {{ dbt.array_construct(['1', '2']) }} as pair,
    {{ dbt.array_append(dbt.array_construct(['1']), '3') }} as appended,
    {{ dbt.array_concat(dbt.array_construct(['1']), dbt.array_construct(['2'])) }} as joined
from {{ ref('stg_events') }}
group by kind
{{ dbt.except() }}
select kind, null, null, null, null, null, null, null from {{ ref('stg_events') }} where 1 = 0
{{ limit_clause(100) }}
