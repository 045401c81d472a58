{#- 69 characters: postgres refuses a typed relation this long (redshift allows 127) -#}
{%- set typed = this.incorporate(type='table') if execute else this -%}
select '{{ typed.identifier | length }}' as name_length
