{{ config(materialized='view') }}
select {{ rw_pkg.rw_week_start('created_at') }} as week_start, *
from {{ ref('pkg_events') }}
