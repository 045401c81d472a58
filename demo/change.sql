-- A change in the warehouse: Grace upgrades, a new customer signs up.
update raw.customers set plan = 'enterprise', lifetime_value = 2400.00 where id = 2;
insert into raw.customers values (6, 'edsger@example.com', 'Edsger Dijkstra', 'team', 310.00);
