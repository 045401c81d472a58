{% set weeks = [] %}
{% for i in range(3) %}{% do weeks.append('week_' ~ loop.index) %}{% endfor %}
select
    {% for w in weeks -%}
    {{ "%s as %s" | format(loop.index0, w) }}{{ "," if not loop.last }}
    {% endfor -%}
from {{ ref('stg_payments') }}
where paid_week >= {{ dbt.string_literal(modules.datetime.date(2024, 1, 1).isoformat()) }}
