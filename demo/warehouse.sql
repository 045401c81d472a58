-- The raw data the dbt project reads (in a real warehouse, loaded by an EL tool).
create schema raw;
create table raw.customers (
    id bigint primary key,
    email text,
    full_name text,
    plan text,
    lifetime_value numeric(12, 2)
);
insert into raw.customers values
    (1, 'Ada@Example.com', 'Ada Lovelace', 'pro', 1200.00),
    (2, 'grace@example.com', 'Grace Hopper', 'team', 640.50),
    (3, 'alan@example.com', 'Alan Turing', 'free', 0.00),
    (4, 'katherine@example.com', 'Katherine Johnson', 'pro', 980.25),
    (5, null, 'No Email Yet', 'free', 0.00);
