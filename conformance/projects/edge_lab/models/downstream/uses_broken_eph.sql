select * from {{ ref('eph_broken') }}
