"""Command (a) of the README: `ducats demo` runs end to end and exits 0."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from ducats.settings import Settings


def test_demo_shows_the_mint_processed_by_the_agent(settings_factory: Callable[..., Settings]) -> None:
    s = settings_factory()
    env = {**os.environ, "DUCATS_TOPIC_PREFIX": s.topic_prefix, "DUCATS_APP_ID": s.app_id,
           "DUCATS_WORKER_WEB_PORT": str(s.worker_web_port), "DUCATS_STATE_DIR": str(s.state_dir)}
    proc = subprocess.run([sys.executable, "-m", "ducats.cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "agent processed mint demo-" in proc.stdout
    assert "now has 1000 ducats" in proc.stdout
