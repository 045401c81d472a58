select * from {{ ref('broken_table') }}
