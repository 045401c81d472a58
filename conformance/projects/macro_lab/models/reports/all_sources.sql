{% call union_of([source('billing', 'invoices'), source('billing', 'payments')]) %}
    _loaded_at > '2024-01-01'
{% endcall %}
