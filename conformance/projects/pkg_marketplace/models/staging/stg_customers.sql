select
    id as customer_id,
    {{ mp_utils.safe_text('email') }} as email,
    {{ mp_utils.concat_all(["first_name", "' '", "last_name"]) }} as full_name
from {{ source('shop', 'customers') }}
