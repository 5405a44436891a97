"""The order view: the CQRS read side. One denormalised OrderSummaryView per order (its user,
product names, status and every saga step with its time), fed by order, inventory, payment,
user and catalog events, rebuildable from the streams, its lag measured.

MongoDB features relied on (all verified against FerretDB v1 by the tests, all in MongoDB):
single-document atomic updates with $set, $inc, $min, $max and $setOnInsert in one update;
upserts with filters on nested fields, including $exists (a guarded upsert that fails its
guard raises DuplicateKeyError); update_many; find_one_and_update with $inc; find with
$in, sort, skip and limit; count_documents; compound and multikey indexes; drop and list of
collections. Not used: transactions, change streams, $push/$pull, renameCollection,
aggregation. FerretDB v1 drops a top-level null given to $setOnInsert, so no null default is
stored; the view fills defaults when it reads.

Rebuild needs the streams' history: a rebuilt view holds the orders ORDERS, INVENTORY and
PAYMENTS still keep (30 days, ``STREAM_MAX_AGE_S``); USERS and CATALOG are kept whole.
See rebuild.py.
"""
