#!/usr/bin/env python3
"""Run dbt (parse / compile) for a warehouse adapter without any warehouse connection.

    DBT_OFFLINE_ADAPTER=snowflake .venv-dbt-adapters/bin/python conformance/dbt_offline.py \
        parse|compile [dbt args...]

The Postgres oracle talks to the local, empty PostgreSQL; Snowflake, BigQuery, Databricks and
Redshift have no local server, so this shim makes every warehouse call answer the way an
empty warehouse would, and then runs dbt's own CLI in the same process:

* opening a connection never touches the network: the connection gets a dummy handle and
  is marked open (dbt opens lazily; with `--no-populate-cache` only `run_query` / `statement`
  blocks and relation lookups would ever reach it);
* every query (`execute`, `add_query`) runs against the local, empty PostgreSQL database
  `warehouse` (the Postgres oracle's warehouse) as a stand-in for an empty warehouse, so a
  result has the columns the query names and the rows an empty warehouse has (a query
  PostgreSQL rejects, e.g. in another SQL dialect, answers an empty table with no columns);
* relation and schema introspection (`get_relation`, `list_relations_without_caching`,
  `get_columns_in_relation`, `list_schemas`, `check_schema_exists`) answers "nothing there",
  which is also what the empty PostgreSQL answers.

The patches are applied to every adapter and connection-manager class that defines these
methods (BigQuery and Databricks override them in Python and call their client libraries
directly). Nothing in dbt's Jinja rendering, macro resolution or manifest writing is touched,
so the manifest is dbt's own. Stdlib only, besides dbt itself.
"""

import os
import sys


def _subclasses(cls):
    seen, todo = [], [cls]
    while todo:
        c = todo.pop()
        for s in c.__subclasses__():
            if s not in seen:
                seen.append(s)
                todo.append(s)
    return [cls, *seen]


def install():
    import importlib

    import agate
    from dbt.adapters.base.connections import BaseConnectionManager
    from dbt.adapters.base.impl import BaseAdapter
    from dbt.contracts.connection import AdapterResponse, ConnectionState

    # only the adapter in use (importing all of them costs seconds: pandas, pyarrow, google);
    # its parents (postgres, spark) come with it
    wanted = os.environ.get("DBT_OFFLINE_ADAPTER", "")
    mods = [wanted] if wanted else ["postgres", "redshift", "snowflake", "bigquery", "databricks"]
    for mod in mods:
        importlib.import_module(f"dbt.adapters.{mod}")

    def empty_table():
        return agate.Table(rows=[], column_names=[], column_types=[])

    def stand_in(sql):
        """The query's result on the local, empty PostgreSQL (`warehouse`)."""
        try:
            import psycopg2
            from dbt.clients.agate_helper import table_from_data_flat
        except ImportError:
            return empty_table()
        try:
            with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                                  dbname="warehouse", connect_timeout=5) as conn:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    if cur.description is None:
                        return empty_table()
                    names = [d[0] for d in cur.description]
                    rows = [dict(zip(names, r)) for r in cur.fetchall()]
                    return table_from_data_flat(rows, names)
        except Exception:  # noqa: BLE001 - another dialect, or no server: empty answer
            return empty_table()

    class Cursor:
        description = []
        rowcount = 0
        sfqid = None

        def fetchall(self):
            return []

        def fetchone(self):
            return None

        def fetchmany(self, *_a, **_k):
            return []

        def execute(self, *_a, **_k):
            return self

        def close(self):
            pass

    class Handle:
        # dbt-databricks asks the handle for the runtime version (`adapter.compare_dbr_version`
        # in dateadd/datediff); a SQL warehouse (no cluster_id) reports (maxsize, maxsize)
        # without a query, and so does this one
        dbr_version = (sys.maxsize, sys.maxsize)

        def cursor(self):
            return Cursor()

        def close(self):
            pass

        def rollback(self):
            pass

        def commit(self):
            pass

    def open_(cls, connection, *_args, **_kwargs):
        connection.handle = Handle()
        connection.state = ConnectionState.OPEN
        return connection

    def execute(self, sql, *args, **kwargs):
        return AdapterResponse(_message="OK"), stand_in(sql)

    def add_query(self, sql, *args, **kwargs):
        return self.get_thread_connection(), Cursor()

    def noop(self, *args, **kwargs):
        return None

    for cls in _subclasses(BaseConnectionManager):
        for name, fn in (("execute", execute), ("add_query", add_query)):
            if name in cls.__dict__:
                setattr(cls, name, fn)
        for name in ("begin", "commit", "add_begin_query", "add_commit_query"):
            if name in cls.__dict__:
                setattr(cls, name, noop)
        # dbt-databricks opens through `_open` (per node) and `_open2` (long sessions) too
        for name in ("open", "_open", "_open2"):
            if name in cls.__dict__:
                setattr(cls, name, classmethod(open_))

    answers = {
        "get_relation": lambda self, *a, **k: None,
        "list_relations_without_caching": lambda self, *a, **k: [],
        "get_columns_in_relation": lambda self, *a, **k: [],
        "list_schemas": lambda self, *a, **k: [],
        "check_schema_exists": lambda self, *a, **k: False,
        "execute": lambda self, sql, *a, **k: (AdapterResponse(_message="OK"), stand_in(sql)),
    }
    for cls in _subclasses(BaseAdapter):
        for name, fn in answers.items():
            if name in cls.__dict__:
                # keep dbt's @available marking (the Jinja `adapter` object only exposes
                # methods registered as available, by name, at class creation)
                setattr(cls, name, fn)


def main():
    install()
    from dbt.cli.main import cli

    sys.argv = ["dbt", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
