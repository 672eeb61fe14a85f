"""Probe (BENCHMARKS.md, "Issue 9's step 6"): the ledger's COPY of outbox rows, text against binary.
20,000 accepted-event-shaped values (about 400 bytes each) into a temporary outbox-shaped table in the
configured database (DATABASE_URL), three times each; the client's CPU and the wall time a row:

    .venv/bin/python bench/probes/outbox_copy.py
"""
import os, time
import orjson
import psycopg
url = os.environ["DATABASE_URL"]
vals = [orjson.dumps({"seq": i, "transactionId": f"tx-{i:012d}", "timestamp": "2026-12-03T18:00:00.123456+00:00", "from": f"holder-{i%3900}", "to": f"holder-{(i*7)%3900}", "ducatIds": [f"BATCH-{i%50}-{j:06d}" for j in range(5)], "ducatCount": 5, "consciousnessImpact": 0.19, "fromBalance": 12, "toBalance": 13, "metadata": {"i": i}, "appliedAt": "2026-12-03T18:00:00.2+00:00"}) for i in range(20000)]
rows = [("bench.transactions.accepted", f"holder-{i%3900}".encode(), v, i % 4) for i, v in enumerate(vals)]
with psycopg.connect(url, autocommit=True) as c:
    c.execute("CREATE TEMP TABLE ob (id bigserial PRIMARY KEY, topic text NOT NULL, key bytea, value bytea NOT NULL, partition int)")
    for rep in range(3):
        for fmt in ("text", "binary"):
            c.execute("TRUNCATE ob")
            t0 = time.process_time(); w0 = time.perf_counter()
            with c.transaction(), c.cursor() as cur:
                if fmt == "text":
                    with cur.copy("COPY ob (topic, key, value, partition) FROM STDIN") as cp:
                        for r in rows: cp.write_row(r)
                else:
                    with cur.copy("COPY ob (topic, key, value, partition) FROM STDIN (FORMAT BINARY)") as cp:
                        cp.set_types(["text", "bytea", "bytea", "int4"])
                        for r in rows: cp.write_row(r)
            print(fmt, f"python cpu {(time.process_time()-t0)/len(rows)*1e6:.1f} us/row  wall {(time.perf_counter()-w0)/len(rows)*1e6:.1f} us/row")
