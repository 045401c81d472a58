-- One row per customer, ready for the CRM.
select
    id,
    lower(email) as email,
    full_name,
    plan,
    lifetime_value
from {{ source('raw', 'customers') }}
where email is not null
