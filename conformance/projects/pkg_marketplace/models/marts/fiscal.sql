select order_id, {{ fiscal_quarter('ordered_at') }} as fiscal_quarter
from {{ ref('stg_orders') }}
