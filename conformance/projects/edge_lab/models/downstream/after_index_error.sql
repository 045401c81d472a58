select * from {{ ref('empty_rows_index') }}
