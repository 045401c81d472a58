select "ENTRY_ID" as entry_id, "AMOUNT" as amount
from {{ source('erp', 'gl_entries') }}
