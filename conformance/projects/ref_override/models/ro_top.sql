{{ config(materialized='table') }}
select m.*, b.* from {{ ref('ro_mid') }} m join {{ ref('ref_override', 'ro_base') }} b on true
  -- the original is still there
  join {{ builtins.ref('ro_base') }} x on true
