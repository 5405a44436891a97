"""MongoDB building blocks for Mongo-backed services (tested against FerretDB v1 and valid
on MongoDB): client, document-embedded outbox and relay, inbox, pruning.

Features relied on (all in FerretDB v1 and MongoDB ≥ 4.4): single-document atomic updates
($set, $unset, $inc, $setOnInsert, $push), upserts with filters (a losing upsert raises
DuplicateKeyError), find with sort/skip/limit, unique and secondary indexes, delete_many.
On FerretDB v1 a single-document update is atomic only if no other connection updates the
same document at the same moment (it reads, modifies and writes back the document); the
local stack therefore gives each process one connection (see polysaga_tools.servers). Only
one replica of a Mongo-backed service may run against FerretDB.
Not used: multi-document transactions, change streams, $pull with conditions,
renameCollection with dropTarget, TTL indexes.
"""
