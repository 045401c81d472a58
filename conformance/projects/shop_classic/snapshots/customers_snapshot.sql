{% snapshot customers_snapshot %}
{{
    config(
      target_database='warehouse',
      target_schema='snapshots_' ~ target.name,
      unique_key='id',
      strategy='timestamp',
      updated_at='updated_at',
      invalidate_hard_deletes=True,
      tags=['pii'],
    )
}}
select *, current_timestamp as updated_at from {{ ref('raw_customers') }}
{% endsnapshot %}
