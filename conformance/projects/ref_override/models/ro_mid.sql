select * from {{ ref('ro_base') }}
