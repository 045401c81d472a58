{#- caller() blocks and set blocks -#}
{% macro union_of(relations) -%}
    {%- for r in relations -%}
        select '{{ r }}' as _source, * from {{ r }}
        {%- if caller is defined %} where {{ caller() | trim }}{% endif %}
        {% if not loop.last %}union all
        {% endif %}
    {%- endfor -%}
{%- endmacro %}

{% macro comment_header(title) -%}
    {%- set banner -%}
        -- {{ title | upper }} ({{ '%s/%03d' % ('v', 7) }})
    {%- endset -%}
    {{ banner | trim }}
{%- endmacro %}
