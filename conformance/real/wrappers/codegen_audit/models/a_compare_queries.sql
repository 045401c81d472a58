{% set old_query %}select * from {{ ref('a_orders') }}{% endset %}
{% set new_query %}select * from {{ ref('a_orders_v2') }}{% endset %}
{{ audit_helper.compare_queries(a_query=old_query, b_query=new_query, primary_key='order_id') }}
