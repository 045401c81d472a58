select
    {{ dbt_utils.get_url_parameter(field='page_url', url_parameter='utm_source') }} as utm_source,
    {{ dbt_utils.get_url_host(field='page_url') }} as host,
    {{ dbt_utils.get_url_path(field='page_url') }} as path,
    {{ dbt_utils.width_bucket('amount', 0, 100, 10) }} as bucket,
    '{{ dbt_utils.slugify("Hello World!") }}' as slug,
    '{{ dbt_utils.pretty_time() | length > 0 }}' as has_time
from (select 'http://x.com/a?utm_source=b' as page_url, 5 as amount) t
