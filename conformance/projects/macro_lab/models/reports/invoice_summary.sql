{%- set currencies = known_currencies() -%}
with lines as (
    select invoice_id, sum(line_total) as total from {{ ref('stg_invoice_lines') }} group by 1
)
select
    i.invoice_id,
    {{ safe_divide('l.total', 'i.amount') }} as ratio,
    {{ dbt.listagg('i.status', "','") }} as statuses,
    {{ currencies | length }} as n_known_currencies
from {{ ref('stg_invoices') }} as i
join lines as l using (invoice_id)
group by 1, 2
