"""Command (a) of the README: `ducats demo` runs the pipeline end to end and exits 0."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

from ducats.settings import Settings


def test_demo_runs_the_pipeline_end_to_end(settings_factory: Callable[..., Settings],
                                           database_factory: Callable[[], str]) -> None:
    s = settings_factory(database_url=database_factory())
    env = {**os.environ, "DUCATS_TOPIC_PREFIX": s.topic_prefix, "DUCATS_APP_ID": s.app_id,
           "DATABASE_URL": s.database_url, "DUCATS_WORKER_WEB_PORT": str(s.worker_web_port),
           "DUCATS_LEDGER_METRICS_PORT": "0", "DUCATS_WORKER_METRICS_PORT": "0"}
    proc = subprocess.run([sys.executable, "-m", "cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # 10 mints + 1,894 valid transfers; each invalid kind once per its modulus.
    assert "ledger: 1904 accepted" in out, out
    for reason in ("duplicate_ducat", "duplicate_transaction", "not_holder", "self_transfer", "unknown_ducat"):
        assert re.search(rf"\d+ {reason}", out), out
    assert "1 not_json, 1 schema_violation, 1 wrong_type" in out
    assert re.search(r"snapshot v\d+ at seq 1904: supply 10000, circulation \d+, holders \d+, transfers 1894", out), out
