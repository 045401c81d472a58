{% snapshot events_snapshot %}
{{
    config(
      target_schema='snapshots',
      unique_key='event_id',
      strategy='timestamp',
      updated_at='occurred_at',
    )
}}
select * from {{ source('raw', 'events') }}
{% endsnapshot %}
