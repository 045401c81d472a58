select distinct day from {{ source('finance', 'fx_rates') }}
