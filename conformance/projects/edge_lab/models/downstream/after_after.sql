select * from {{ ref('after_broken') }}
