"""Read-ahead ingest: the next batch is claimed, read and decoded on CPU threads while
this one is encoded, so an accelerator is not left waiting for JPEG decoding.

`Ingest.process` is two halves: `read` (what is indexed of each product; the photos
fetched and decoded, on every core) and `commit` (one forward pass, the enrichers, the
upsert, the items finished). Here the read of batch N+1 runs on one helper thread
while the caller's thread commits batch N. torch releases the GIL in its kernels and
Pillow in its decoders, so the two overlap; that pays where the model runs on a GPU. On
the CPU, decoding would take the cores the forward pass uses, so it is off there by
default (`VITRINE_INGEST_READ_AHEAD`).

One hazard, and its rule: batch N+1 was prepared while batch N was being written, so
for a product in both, what N+1 read as indexed is stale (an older version; which
photos hold vectors). Such a batch is prepared again after N's write, before it is
encoded. That is rare (one product uploaded twice within two batches) and costs only
the re-decode. A failure anywhere releases the batch read ahead, so nothing claimed is
lost: its items go back to the queue for the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from catalogue import metrics
from catalogue.ingest import Ingest, Prepared, take_batch
from catalogue.jobs import Item

Ahead = tuple[list[Item], Prepared | None]


def run_ahead(ingest: Ingest, on_batch: Callable[[int], None] | None = None) -> int:
    """`Ingest.run_pending`, with each batch prepared while the previous one is committed."""
    size = ingest.settings.ingest_batch_size

    def claim_and_prepare() -> Ahead:
        items = take_batch(ingest.jobs, size)
        return items, ingest.read(items) if items else None

    taken = 0
    with ThreadPoolExecutor(1, thread_name_prefix="ingest-ahead") as pool:
        ahead: Future[Ahead] = pool.submit(claim_and_prepare)
        while True:
            items, prepared = ahead.result()  # StoreUnavailable: read released them
            if prepared is None:
                return taken
            ahead = pool.submit(claim_and_prepare)
            try:
                with metrics.ingest_batch(len(items)):
                    ingest.commit(prepared)
            except BaseException:
                release(ingest, ahead)
                raise
            written = {it.product_id for it in items}
            # `ahead` may have read this batch's products before they were written
            ahead = fresh_ahead(ingest, ahead, written, pool)
            taken += len(items)
            if on_batch:
                on_batch(len(items))


def fresh_ahead(ingest: Ingest, ahead: Future[Ahead], written: set[str],
            pool: ThreadPoolExecutor) -> Future[Ahead]:
    """`ahead`, prepared again if it holds a product just written (what it read of the
    product is older than the store now)."""
    items, prepared = ahead.result()
    if prepared is None or not written & {it.product_id for it in items}:
        return ahead
    return pool.submit(lambda: (items, ingest.read(items)))


def release(ingest: Ingest, ahead: Future[Ahead]) -> None:
    """Give the batch read ahead back to the queue (this run stops)."""
    try:
        items, _ = ahead.result()
    except Exception:  # its read failed and released the items itself
        return
    for it in items:
        ingest.jobs.release(it)
