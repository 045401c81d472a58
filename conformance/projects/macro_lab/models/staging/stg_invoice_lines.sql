select
    {{ select_cols('l', 'line_id', 'invoice_id', 'sku', upper=true) }},
    {{ dbt.hash(dbt.concat(['l.invoice_id', "'-'", 'l.line_id'])) }} as line_key,
    {{ dbt.cast_bool_to_text('l.is_refund') }} as is_refund_text,
    quantity * unit_price as line_total
from {{ source('billing', 'invoice_lines') }} as l
