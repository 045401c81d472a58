{{ comment_header('payments') }}
select
    payment_id,
    invoice_id,
    {{ week_start('paid_at') }} as paid_week,
    {{ dbt.dateadd('day', 30, 'paid_at') }} as due_at,
    {{ dbt.datediff('paid_at', dbt.current_timestamp(), 'day') }} as age_days,
    {{ dbt.safe_cast('amount', dbt.type_numeric()) }} as amount
from {{ source('billing', 'payments') }}
