-- The consciousness document ({awareness, evolutionStage, resonanceFrequency,
-- lastEvolution}) is no longer stored: every part of it but lastEvolution is a
-- function of columns the row already has (ducats.domain.consciousness), so the
-- read side builds it (reads/ledger.py). Writing it made every moved ducat's
-- row update half again as slow: a 22,906-row UPDATE took 0.91 to 1.25 s with
-- the document and 0.59 s without it (BENCHMARKS.md, "Issue 9: the ledger's
-- step"). lastEvolution keeps its own column.
ALTER TABLE ducats ADD COLUMN IF NOT EXISTS last_evolution timestamptz;  -- NULL until the stage first rises
UPDATE ducats SET last_evolution = (consciousness ->> 'lastEvolution')::timestamptz
 WHERE consciousness ->> 'lastEvolution' IS NOT NULL;
ALTER TABLE ducats DROP COLUMN IF EXISTS consciousness;
