{% set r = pc_regex_demo() %}
select
    {{ r[0] }} as popped,
    '{{ r[1] }}' as cut,
    '{{ r[2] | join(",") }}' as words,
    '{{ r[3] }}' as joined,
    {{ r[4] }} as matched_ci,
    {{ r[5] }} as match_anchored,
    '{{ r[6] }}' as negative,
    '{{ r[7] | join(",") }}' as behind,
    {{ r[8] }} as flag_value
