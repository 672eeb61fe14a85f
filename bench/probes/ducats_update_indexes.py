"""Probe (BENCHMARKS.md, "Issue 9's step 5"): the ducat-state sink's UPDATE of moved ducats' wide rows,
by which indexes ``ducats`` has. A ducats-shaped table of 3.9M rows in the configured database
(DATABASE_URL); 30 statements of 10,000 random ids (staged by COPY, then UPDATE ... FROM by
primary key, the sink's plan); then one index dropped, and again. About 3 minutes:

    .venv/bin/python bench/probes/ducats_update_indexes.py
"""
import os, random, time
import psycopg
url = os.environ["DATABASE_URL"]
N, K, R = 3_900_000, 10_000, 30
rng = random.Random(3)
with psycopg.connect(url, autocommit=True) as c:
    c.execute("DROP TABLE IF EXISTS probe_ducats")
    c.execute("""CREATE TABLE probe_ducats (id bigint PRIMARY KEY, batch bigint, holder text NOT NULL, previous_holder text,
                 transfer_count int NOT NULL DEFAULT 0, impact_sum double precision NOT NULL DEFAULT 0,
                 network_hops int NOT NULL DEFAULT 0, last_tx_seq bigint, last_transfer_at timestamptz,
                 consciousness_level real NOT NULL DEFAULT 0, stage smallint NOT NULL DEFAULT 0,
                 temperature text NOT NULL DEFAULT 'cold', memory_count smallint NOT NULL DEFAULT 0,
                 last_evolution timestamptz, mint_id text, minted_at timestamptz)""")
    c.execute("""INSERT INTO probe_ducats (id, batch, holder, mint_id, minted_at)
                 SELECT g, g / 1000, 'holder-' || (g %% 3900), 'mint-' || (g / 1000), now() FROM generate_series(1, %s) g""", [N])
    c.execute("CREATE INDEX probe_holder ON probe_ducats (holder, id)")
    c.execute("CREATE INDEX probe_active ON probe_ducats (last_transfer_at DESC) WHERE temperature <> 'cold'")
    c.execute("VACUUM ANALYZE probe_ducats")
    c.execute("""CREATE TEMP TABLE ch (id bigint, holder text, previous_holder text, transfer_count int,
                 last_at timestamptz, temperature text)""")
    def run(label):
        t = 0.0
        for r in range(R):
            ids = sorted(rng.sample(range(1, N + 1), K))
            with c.transaction():
                c.execute("TRUNCATE ch")
                with c.cursor().copy("COPY ch FROM STDIN") as cp:
                    for i in ids:
                        cp.write_row((i, f"holder-{rng.randrange(3900)}", "x", 1, "2026-01-01T00:00:00+00", "hot"))
                c.execute("SET LOCAL enable_hashjoin = off"); c.execute("SET LOCAL enable_mergejoin = off")
                s = time.perf_counter()
                c.execute("""UPDATE probe_ducats AS d SET holder = c.holder, previous_holder = c.previous_holder,
                             transfer_count = d.transfer_count + 1, last_transfer_at = c.last_at,
                             temperature = c.temperature FROM ch AS c WHERE d.id = c.id""")
                t += time.perf_counter() - s
        st = c.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'probe_ducats'").fetchone()
        print(f"{label:40s} {t / (R * K) * 1e6:6.1f} us a row   (updates, HOT so far: {st})", flush=True)
    run("pk + holder + active (as built)")
    c.execute("DROP INDEX probe_active"); run("pk + holder")
    c.execute("DROP INDEX probe_holder"); run("pk only")
    c.execute("ALTER TABLE probe_ducats SET (fillfactor = 80)"); c.execute("VACUUM FULL probe_ducats"); run("pk only, fillfactor 80 (HOT possible)")
    c.execute("DROP TABLE probe_ducats")
