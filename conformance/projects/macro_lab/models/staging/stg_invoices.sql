{%- set cols = column_specs('i', ['invoice_id', 'customer_id', 'status']) -%}
select
    {{ cols | join(',\n    ') }},
    {{ decode_status('i.status') }} as status_code,
    {{ money('i.amount_cents / 100.0') }} as amount,
    {{ money('i.tax_cents', precision=0) }} as tax_cents,
    {{ dbt.safe_cast('i.issued_at', api.Column.translate_type('timestamp')) }} as issued_at,
    {{ dbt.type_string() }} as _type_probe
from {{ source('billing', 'invoices') }} as i
