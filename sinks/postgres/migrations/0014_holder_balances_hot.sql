-- holder_balances changes in every ledger batch (about a thousand holders each at
-- 2,000 transfers/s). Its partial index (holder WHERE ducats > 0) names the column
-- every update changes, so no update could be HOT: each wrote a new row version
-- and two index entries. Nothing reads through that index (the holders count comes
-- from the worker's fold, a holder's balance by primary key), so it goes, and the
-- table leaves half of each page free for the new versions: in the probe
-- (BENCHMARKS.md, "Issue 9's step 5") 25.8 -> 11.2 µs a row, every update HOT.
DROP INDEX IF EXISTS holder_balances_positive_idx;
ALTER TABLE holder_balances SET (fillfactor = 50);
