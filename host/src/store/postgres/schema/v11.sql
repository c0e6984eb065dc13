-- Version 11: room on each `participants` page for the new version of a row, so a message's unread count
-- updates stay on their page (heap-only tuples: no index entry written for them).
--
-- A message counts as unread for every other participant of its conversation: an UPDATE of each of their
-- rows. With full pages, each new row version went to another page and took a new entry in both indexes
-- of the table; a message to 1,000 members wrote 2,000 index entries (BENCHMARKS.md, problem 15). At 50%,
-- PostgreSQL keeps a page half empty when it fills it, and an update that finds room on its row's page
-- touches no index. Pages filled before this version keep no room until the table is rewritten
-- (`VACUUM FULL participants`).
ALTER TABLE participants SET (fillfactor = 50);
