select * from {{ ref('eph_fine') }}
