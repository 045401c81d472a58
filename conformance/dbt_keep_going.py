#!/usr/bin/env python3
"""Run `dbt compile` so that it reports every node instead of stopping at the first error.

    [DBT_OFFLINE_ADAPTER=snowflake] <venv>/bin/python conformance/dbt_keep_going.py compile [dbt args...]

Used by harness.py for projects whose conformance.json sets `dbt_node_errors` (nodes that
fail to compile on purpose). dbt's CompileTask raises on the first node error; `dbt run` and
`dbt build` do not: they record the error, skip the node's descendants (with "caused by
compilation error in referenced ephemeral model ..." when the failed node is ephemeral) and
write run_results.json. This shim gives compile that same behaviour by answering False to
`CompileTask.raise_on_first_error`, and changes nothing else: rendering, error propagation
and the manifest are dbt's own. For adapters other than postgres it then runs dbt through
dbt_offline.py (no warehouse connection), for postgres dbt's own CLI.
"""

import os
import sys


def main():
    from dbt.task.compile import CompileTask

    CompileTask.raise_on_first_error = lambda self: False
    if os.environ.get("DBT_OFFLINE_ADAPTER", "postgres") == "postgres":
        from dbt.cli.main import cli

        sys.argv = ["dbt", *sys.argv[1:]]
        cli()
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import dbt_offline

        dbt_offline.main()


if __name__ == "__main__":
    main()
