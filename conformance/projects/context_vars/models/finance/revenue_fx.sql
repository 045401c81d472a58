{% if var('feature_flags')['new_pricing'] %}
select 'new pricing' as pricing, r.* from {{ latest_fx_rates() }} as r
{% else %}
select 'old pricing' as pricing, r.* from {{ latest_fx_rates() }} as r
{% endif %}
