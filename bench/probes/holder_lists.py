"""Probe (BENCHMARKS.md, "Issue 9's step 6"): where a holder's list of ducats can live, by what
each move then costs the ducat-state sink. A ducats-shaped table of 3.9M rows in the configured
database (DATABASE_URL), 30 statements of 10,000 random ids (staged by COPY, applied by primary
key with the sink's plan), the holder changing in every row; a fresh table for each variant:

- ``as built``: ``ducats`` with its primary key, ``(holder, id)`` and the partial active index;
- ``holdings table``: ``ducats`` with its primary key only (fillfactor 80, so its updates can be
  HOT) and a narrow ``holdings (holder, id)`` table keyed by both: a move deletes the old pair
  and inserts the new one;
- ``as built, fillfactor 80``: the same indexes, with room on each page for a row's new version;
- ``narrow holder row``: ``ducats`` as above, and ``ducat_holders (id primary key, holder)`` with
  an index on ``(holder, id)``, updated in place.

About 8 minutes:

    .venv/bin/python bench/probes/holder_lists.py
"""
import os, random, time
import psycopg
url = os.environ["DATABASE_URL"]
N, K, R = 3_900_000, 10_000, 30
COLUMNS = """(id bigint PRIMARY KEY, batch bigint, holder text NOT NULL, previous_holder text,
             transfer_count int NOT NULL DEFAULT 0, impact_sum double precision NOT NULL DEFAULT 0,
             network_hops int NOT NULL DEFAULT 0, last_tx_seq bigint, last_transfer_at timestamptz,
             consciousness_level real NOT NULL DEFAULT 0, stage smallint NOT NULL DEFAULT 0,
             temperature text NOT NULL DEFAULT 'cold', memory_count smallint NOT NULL DEFAULT 0,
             last_evolution timestamptz, mint_id text, minted_at timestamptz)"""
UPDATE = """UPDATE probe_ducats AS d SET holder = c.holder, previous_holder = c.previous_holder,
            transfer_count = d.transfer_count + 1, last_transfer_at = c.last_at,
            temperature = c.temperature FROM ch AS c WHERE d.id = c.id"""


def variant(c, label, *, ducats_with, extra, statements):
    rng = random.Random(3)
    holder: dict[int, str] = {}
    c.execute("DROP TABLE IF EXISTS probe_ducats, probe_holdings, probe_ducat_holders")
    c.execute(f"CREATE TABLE probe_ducats {COLUMNS} WITH (fillfactor = {ducats_with['fillfactor']})")
    c.execute("""INSERT INTO probe_ducats (id, batch, holder, mint_id, minted_at)
                 SELECT g, g / 1000, 'holder-' || (g %% 3900), 'mint-' || (g / 1000), now()
                 FROM generate_series(1, %s) g""", [N])
    for ddl in ducats_with["indexes"] + extra:
        c.execute(ddl)
    c.execute("VACUUM ANALYZE")
    t = 0.0
    for _ in range(R):
        ids = sorted(rng.sample(range(1, N + 1), K))
        with c.transaction():
            c.execute("TRUNCATE ch")
            with c.cursor().copy("COPY ch FROM STDIN") as cp:
                for i in ids:
                    old = holder.get(i, f"holder-{i % 3900}")
                    new = holder[i] = f"holder-{rng.randrange(3900)}"
                    cp.write_row((i, new, old, 1, "2026-01-01T00:00:00+00", "hot"))
            c.execute("SET LOCAL enable_hashjoin = off"); c.execute("SET LOCAL enable_mergejoin = off")
            s = time.perf_counter()
            for sql in statements:
                c.execute(sql)
            t += time.perf_counter() - s
    hot = c.execute("SELECT sum(n_tup_upd), sum(n_tup_hot_upd) FROM pg_stat_user_tables "
                    "WHERE relname IN ('probe_ducats', 'probe_ducat_holders')").fetchone()
    print(f"{label:22s} {t / (R * K) * 1e6:6.1f} us a move   (updates, HOT: {hot})", flush=True)


with psycopg.connect(url, autocommit=True) as c:
    c.execute("""CREATE TEMP TABLE ch (id bigint, holder text, previous_holder text, transfer_count int,
                 last_at timestamptz, temperature text)""")
    built = {"fillfactor": 100, "indexes": [
        "CREATE INDEX probe_holder ON probe_ducats (holder, id)",
        "CREATE INDEX probe_active ON probe_ducats (last_transfer_at DESC) WHERE temperature <> 'cold'"]}
    hot = {"fillfactor": 80, "indexes": []}
    variant(c, "as built", ducats_with=built, extra=[], statements=[UPDATE])
    variant(c, "as built, fillfactor 80", ducats_with={**built, "fillfactor": 80}, extra=[], statements=[UPDATE])
    variant(c, "holdings table", ducats_with=hot, extra=[
        "CREATE TABLE probe_holdings (holder text, id bigint, PRIMARY KEY (holder, id))",
        "INSERT INTO probe_holdings SELECT holder, id FROM probe_ducats"],
        statements=[UPDATE,
                    "DELETE FROM probe_holdings AS h USING ch AS c WHERE h.holder = c.previous_holder AND h.id = c.id",
                    "INSERT INTO probe_holdings SELECT holder, id FROM ch"])
    variant(c, "narrow holder row", ducats_with=hot, extra=[
        "CREATE TABLE probe_ducat_holders (id bigint PRIMARY KEY, holder text NOT NULL)",
        "INSERT INTO probe_ducat_holders SELECT id, holder FROM probe_ducats",
        "CREATE INDEX probe_dh_holder ON probe_ducat_holders (holder, id)"],
        statements=[UPDATE,
                    "UPDATE probe_ducat_holders AS d SET holder = c.holder FROM ch AS c WHERE d.id = c.id"])
    variant(c, "no holder list", ducats_with=hot, extra=[], statements=[UPDATE])
    c.execute("DROP TABLE IF EXISTS probe_ducats, probe_holdings, probe_ducat_holders")
