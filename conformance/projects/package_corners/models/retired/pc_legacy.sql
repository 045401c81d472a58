select 1 as legacy_id
