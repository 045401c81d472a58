{{ dbt_date.get_date_dimension("2020-01-01", "2020-03-01") }}
