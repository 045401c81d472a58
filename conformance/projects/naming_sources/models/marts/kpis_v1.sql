select 1 as kpi
