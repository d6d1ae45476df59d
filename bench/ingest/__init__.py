"""Ingest throughput: a naive per-image loop, the Vitrine pipeline, and the model alone.

    .venv/bin/python -m bench.ingest           # 256 photos, batch 32 (+16, 64), f32 and bf16
    .venv/bin/python -m bench.ingest --quick   # smoke run, under a minute

The model is ViT-B/32-sized (`Architecture.vit_b32()`) with random weights: timing does
not depend on what the weights learnt. It is built once into data/models/vit-b32-random
(git-ignored) and loaded through `Encoder(model=folder)`, the path a hub id takes. Its
tokenizer is trained on a small corpus, so its vocabulary is below CLIP's 49,408; that
touches only the text tower, which ingest never runs.

Photos are generated: 600x800 JPEGs of a garment-like shape on a light background with
texture and sensor noise (about 60-100 kB each, as catalogue photos are).

(a) naive: per photo, PIL decode, the HF image processor, `model.get_image_features`
    on one image, float32 - what a first script does.
(b) Vitrine: the upload is accepted as the API does (validated, original stored, job
    recorded), then what `Ingest.run_pending` does - claim a batch, `Ingest.process` it:
    read originals from the media store and decode them (on every core), batched fast
    preprocessing, one forward pass per batch, upsert into an EdgeStore, record each
    item done. Stages are timed by wrapping the functions the pipeline calls; "other"
    is the rest of the loop.
(c) model only: `get_image_features` on pre-made pixel tensors, same dtype and batch size.

torch uses as many threads as this process may use cores (a control repeats the rounds
at one thread). The targets are judged on rounds of (a), then (b) and (c) per dtype, run
back to back; ratios are taken within a round and the median over rounds is reported,
because on a shared machine runs minutes apart can differ two- or threefold.

Modules: `workload` (the model, its threads, the photos), `pipelines` (the three timed
loops), `rounds` (paired rounds, the batch-size sweep, medians), `report` (targets,
tables, notes), `__main__` (the command line).
"""
