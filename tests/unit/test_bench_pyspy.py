"""bench/pyspy.py: py-spy's raw collapsed stacks, summarised into self time by
package and function and the inclusive time of the project's own frames."""
from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.pyspy import summarise

RAW = """\
process 11:"python -m cli api";<module> (cli/main.py:3);run (uvloop/__init__.py:82) 50
process 11:"python -m cli api";<module> (cli/main.py:3);ducat (serving/routes/ledger.py:47);_one (reads/ledger.py:70);execute (psycopg/cursor_async.py:97) 30
process 12:"python -m cli api";thread (0x7f);<module> (cli/main.py:3);ducat (serving/routes/ledger.py:47);_one (reads/ledger.py:70);_one (reads/ledger.py:71) 20
garbage line without a count
"""


def test_self_time_by_package_and_function_and_inclusive_project_frames() -> None:
    s = summarise(RAW)
    assert s["samples"] == 100
    pkg = {e["name"]: e["share"] for e in s["self_by_package"]}
    assert pkg == {"uvloop": 0.5, "psycopg": 0.3, "reads": 0.2}
    fn = {e["name"]: e["samples"] for e in s["self_by_function"]}
    assert fn == {"run (uvloop/__init__.py)": 50, "execute (psycopg/cursor_async.py)": 30,
                  "_one (reads/ledger.py)": 20}
    ours = {e["name"]: e["samples"] for e in s["inclusive_ours"]}
    # a function that is twice on one stack counts once for it; cli/ is not a project frame
    assert ours == {"ducat (serving/routes/ledger.py)": 50, "_one (reads/ledger.py)": 50}


def test_no_samples_is_an_error() -> None:
    with pytest.raises(BenchError, match="no samples"):
        summarise("nothing here\n")
