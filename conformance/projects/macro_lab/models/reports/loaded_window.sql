{%- set since = last_loaded_day("'2024-01-01'") -%}
{%- if since is none -%}
    {{ exceptions.raise_compiler_error("no default day") }}
{%- endif -%}
{%- set pairs = [] -%}
{%- for a, b in zip(['invoice_id', 'status'], ['id', 'state']) -%}
    {%- do pairs.append(a ~ ' as ' ~ b) -%}
{%- endfor -%}
select {{ pairs | join(', ') }}
from {{ ref('stg_invoices') }}
where issued_at >= {{ since }}
