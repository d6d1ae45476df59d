"""Vector search benchmark: the embedded store (Qdrant Edge), qdrant-client local mode, FAISS.

    .venv/bin/python -m bench.vector_search --sizes 100000 1000000 --queries 1000
    .venv/bin/python -m bench.vector_search --sizes 100000 --systems edge-int8 --ef-construct 100
    .venv/bin/python -m bench.vector_search --quick          # smoke test, under a minute

Data is synthetic but shaped like CLIP image embeddings: a few hundred clusters of
Zipf-distributed size around centres that share one mean direction (so pairwise
cosines sit mostly in 0.1-0.6, a narrow cone), anisotropic per-cluster noise plus a
shared low-rank component, L2-normalised. Payloads (category, colour, gender, price)
correlate with the cluster, as they do with real products. Queries are drawn the same
way and are not copies of stored points. Everything is deterministic from `--seed`.

Each system runs in its own spawned process, so its RSS growth is its own and a crash or
an out-of-memory kill of one system does not lose the others. Exact top-10 (FAISS
IndexFlatIP unfiltered, numpy over the matching subset for filtered queries) is computed
once in the parent and is the reference for recall@10.

Modules: `data` (vectors, payloads, query filters, the shared work folder), `truth`
(exact top-10), `systems` (qdrant-client local, FAISS flat and HNSW, and the per-system
process), `edge_run` (the embedded store unquantised and int8 with rescoring: build,
beam and oversampling sweeps, ACORN, a fresh import, peak RSS of every process, disk),
`measure` (the timed query loop), `report` (table, targets, markdown), `__main__` (the
command line; the store's index settings default to the app's).

Products with several photos (one multi-vector point each, MaxSim), 1 photo against N
side by side: `python -m bench.vector_search.photos`, with `views` (the photos as views
of their product, variant payloads, nested filters, exact MaxSim) and `photos` (the
cases, each in its own process, and the report).

What that layout costs against one plain vector a point, one photo a product:
`python -m bench.vector_search.layout`; a graph over one vector a product with MaxSim
over its photos for scoring, against that layout: `python -m bench.vector_search.main_photo`.
"""
