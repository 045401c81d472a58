{#- refs captured at parse time stay in depends_on when compiling fails later -#}
select * from {{ ref('independent') }}
{%- if execute %}
{{ exceptions.raise_compiler_error("refs_then_fails cannot compile") }}
{%- endif %}
