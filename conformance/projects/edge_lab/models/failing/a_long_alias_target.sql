{{ config(alias='this_alias_is_also_quite_a_bit_longer_than_the_sixty_three_postgres_chars') }}
select 1 as id
