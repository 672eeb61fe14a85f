"""Probe (BENCHMARKS.md, "Issue 9's step 5"): the ledger's balance upsert on a holder_balances-shaped
table (3,900 holders, 200 statements of 1,000 random holders), with and without the partial
index on ``ducats > 0``, by fillfactor, and as an UPDATE ... FROM; in the configured database:

    .venv/bin/python bench/probes/holder_balances.py
"""
import psycopg, random, time, os
url=os.environ["DATABASE_URL"]
rng=random.Random(1)
holders=[f"holder-{i:05d}" for i in range(3900)]
def setup(conn, partial, ff):
    conn.execute("DROP TABLE IF EXISTS probe_bal")
    conn.execute(f"CREATE TABLE probe_bal (holder text PRIMARY KEY, ducats bigint NOT NULL CHECK (ducats >= 0)) WITH (fillfactor={ff})")
    conn.execute("INSERT INTO probe_bal SELECT unnest(%s::text[]), 1000", [holders])
    if partial: conn.execute("CREATE INDEX probe_bal_pos ON probe_bal (holder) WHERE ducats > 0")
    conn.execute("VACUUM ANALYZE probe_bal")
UPSERT="INSERT INTO probe_bal (holder, ducats) SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT (holder) DO UPDATE SET ducats = excluded.ducats"
UPDATE="UPDATE probe_bal AS b SET ducats = u.d FROM unnest(%s::text[], %s::bigint[]) AS u(h, d) WHERE b.holder = u.h"
for name, partial, ff, sql in [("upsert+partial ff100", True, 100, UPSERT), ("upsert ff100", False, 100, UPSERT),
                               ("upsert ff50", False, 50, UPSERT), ("update ff50", False, 50, UPDATE), ("upsert+partial ff100 again", True, 100, UPSERT)]:
    with psycopg.connect(url, autocommit=True) as conn:
        setup(conn, partial, ff)
        t=time.perf_counter(); n=0
        for i in range(200):
            hs=sorted(rng.sample(holders, 1000)); vals=[rng.randint(1,2000) for _ in hs]
            with conn.transaction():
                conn.execute(sql,[hs,vals])
            n+=len(hs)
        dt=time.perf_counter()-t
        hot=conn.execute("select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname='probe_bal'").fetchone()
        print(f"{name:28s} {dt/n*1e6:6.1f} us/row  upd/hot={hot}")
    with psycopg.connect(url, autocommit=True) as conn: conn.execute("DROP TABLE probe_bal")
