{#- an untyped ref to a long name is fine everywhere (dbt checks only typed relations) -#}
select * from {{ ref('a_long_alias_target') }}
