select 2 as kpi
