-- the folder is disabled, this file is re-enabled by a deeper project path
select * from {{ ref('customers') }}
