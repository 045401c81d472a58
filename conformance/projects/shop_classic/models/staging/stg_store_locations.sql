select
    1 as store_id,
    'Tromsø' as city, -- «north»
    '{{ "café" | upper }}' as label
from {{ ref('raw_customers') }}
