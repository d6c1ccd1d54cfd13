"""dynalite, a DynamoDB emulator that reads key ranges, as a second home for a world's catalog.

dynalite (npm, pinned in ``package.json``, installed by ``npm ci``) keeps the table and each index
in key order, so a query reads only its key range, as DynamoDB does. moto evaluates every query
over the whole table: fine for behaviour, but read latency then grows with the catalog, so the
dashboard benchmark moves a pipeline world's catalog here (``copy_catalog``) and measures the page
against a backend whose cost model is DynamoDB's. dynalite lacks TTL and transactions, which the
dashboard never uses.

    with World(templates, WorldOptions(server_port=0)) as world, dynalite_server() as endpoint:
        world.run({})
        copy_catalog(world.client("dynamodb"), dynalite_client(endpoint), world.catalog_table)
"""

from __future__ import annotations

import contextlib
import select
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3

from lambdas.shared.catalog import table_definition

ROOT = Path(__file__).resolve().parent.parent
DYNALITE = ROOT / "node_modules" / "dynalite" / "cli.js"
BATCH = 25

# Listens on a port the OS picks and prints it: dynalite's own CLI treats --port 0 as 4567, and
# choosing a free port first would race with anything else binding it meanwhile.
_DYNALITE_JS = """
const server = require(process.argv[1])({createTableMs: 0, deleteTableMs: 0, updateTableMs: 0});
server.on('error', (err) => { console.error(err.message); process.exit(1); });
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
"""


@contextlib.contextmanager
def dynalite_server(timeout_s: float = 20.0) -> Iterator[str]:
    """dynalite on 127.0.0.1 (a port the OS picks); yields its endpoint URL.

    Tables are ACTIVE at once (the 500 ms default CREATING state only slows the setup).
    """
    if not DYNALITE.exists():
        raise RuntimeError(f"dynalite is not installed ({DYNALITE} is missing): run `npm ci`")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("dynalite needs Node.js: `node` is not on PATH")
    process = subprocess.Popen(  # noqa: S603 - fixed script, our own pinned package
        [node, "-e", _DYNALITE_JS, str(DYNALITE.parent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: Any = process.stdout
    try:
        ready, _, _ = select.select([output], [], [], timeout_s)
        line = output.readline().strip() if ready else ""
        if not line.isdigit():
            how = "no port" if ready else f"no answer in {timeout_s} s"
            process.kill()
            said = (line + "\n" + output.read()).strip() or "no output"
            raise RuntimeError(f"dynalite did not start ({how}); it said:\n{said}")
        yield f"http://127.0.0.1:{line}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def dynalite_client(endpoint_url: str, region: str = "us-east-1") -> Any:
    """A DynamoDB client for dynalite (it accepts any credentials; these reach no account)."""
    return boto3.session.Session(
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - dynalite accepts anything
        region_name=region,
    ).client("dynamodb", endpoint_url=endpoint_url)


def write_items(dynamodb: Any, table: str, items: Sequence[dict[str, Any]]) -> None:
    """Batch-write items already in DynamoDB's typed JSON (``{"S": ...}``), retrying leftovers."""
    for start in range(0, len(items), BATCH):
        request: dict[str, Any] = {
            table: [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH]]
        }
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def copy_catalog(source: Any, target: Any, table: str) -> int:
    """Create ``table`` on ``target`` (a DynamoDB client) and copy every item from ``source``.

    Moves a built world's catalog to another backend (dynalite); TTL is not set up there, and it
    never affects reads. Returns the number of items copied.
    """
    target.create_table(**table_definition(table))
    target.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    count = 0
    for page in source.get_paginator("scan").paginate(TableName=table):
        chunk = page.get("Items", [])
        write_items(target, table, chunk)
        count += len(chunk)
    return count
