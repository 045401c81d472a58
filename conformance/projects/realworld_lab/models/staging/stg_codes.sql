select code, label, 10 as amount from {{ ref('rw_codes') }}
