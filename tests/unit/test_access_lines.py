"""serving/observability.py AccessLines: one structured line per request, in the
shape of every other line (event, logger, level, timestamp), written in batches
and flushed by the timer, at the batch size, and on demand."""
from __future__ import annotations

import asyncio
import io
import re

import orjson

from serving.observability import AccessLines

FIELDS = {"method": "GET", "path": "/api/ping", "route": "/api/ping", "status": 200, "ms": 0.5, "client": "127.0.0.1"}


async def test_json_lines_are_batched_then_written_by_the_timer() -> None:
    out = io.StringIO()
    lines = AccessLines(json_lines=True, stream=out, every=0.05, most=100)
    for _ in range(3):
        lines.add(FIELDS)
    assert out.getvalue() == ""  # not one write per request
    await asyncio.sleep(0.1)
    written = [orjson.loads(x) for x in out.getvalue().splitlines()]
    assert len(written) == 3
    assert written[0] == {**FIELDS, "event": "api.request", "logger": "ducats.api.access", "level": "info",
                          "timestamp": written[0]["timestamp"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", written[0]["timestamp"])


async def test_a_full_batch_is_written_at_once_and_flush_writes_the_rest() -> None:
    out = io.StringIO()
    lines = AccessLines(json_lines=False, stream=out, every=60, most=2)
    lines.add(FIELDS)
    lines.add(FIELDS)
    assert len(out.getvalue().splitlines()) == 2
    lines.add({**FIELDS, "status": 404})
    lines.flush()
    last = out.getvalue().splitlines()[-1]
    assert " api.request " in last and "status=404" in last and "method=GET" in last
    lines.flush()  # nothing left: no empty line
    assert len(out.getvalue().splitlines()) == 3
