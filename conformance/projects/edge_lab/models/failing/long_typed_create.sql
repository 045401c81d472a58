{%- if execute -%}
{%- set rel = api.Relation.create(database=target.database, schema=target.schema,
        identifier='created_relation_with_a_name_well_over_the_sixty_three_character_limit',
        type='view') -%}
{%- else -%}
{%- set rel = none -%}
{%- endif %}
select '{{ rel.identifier if rel else "" }}' as created
