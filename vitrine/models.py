"""`vitrine reindex` and `vitrine models`: put another model into service, or an old one
back, without mixing two models' vectors (catalogue.versions, catalogue.reindex).

Both work on a stopped local profile (the embedded store is one process's) or against a
cluster's Qdrant server and PostgreSQL while it serves: the live version stays live
until the new one is complete and checked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tqdm import tqdm

from catalogue.attributes import CatalogueSchema
from catalogue.keywords import Keywords
from catalogue.reindex import Progress, Reindexer, ReindexFailed
from catalogue.settings import CatalogueSettings
from catalogue.versions import ModelVersion, Versions
from embedding.encoder import Encoder, ModelLoadError


def registry(settings: CatalogueSettings) -> Versions:
    return Versions(settings.jobs_url or settings.jobs_db)


def reindex(model: str, say=print) -> int:
    """Re-encode the live catalogue with `model` into its own version; make it live."""
    from vitrine.wiring import build_services, open_store

    settings = CatalogueSettings()
    versions = registry(settings)
    live = versions.live()
    if live is None:
        say("vitrine: no catalogue yet, nothing to reindex (import one, it is encoded with "
            "VITRINE_MODEL)")
        return 2
    try:
        encoder = Encoder(model=model).load()
    except ModelLoadError as exc:
        say(f"vitrine: {exc}")
        return 2
    version = ModelVersion.of(encoder)
    if version.id == live.id:
        say(f"{model} is the live version already ({live.id}): nothing to do")
        return 0
    version = versions.add(version)
    services = build_services(encoder=Encoder(model=live.model))  # the live model's parts
    schema = CatalogueSchema.load(settings.catalogue_schema)
    target = open_store(settings, encoder.dim, schema, version)
    reindexer = Reindexer(settings, services.store, target, encoder, services.media,
                          Keywords(schema, settings.text_language))
    with tqdm(total=services.store.count(), desc=f"reindexing into {version.id}",
              unit="product") as bar:
        def on_page(progress: Progress) -> None:
            bar.total = max(bar.total or 0, progress.total)
            bar.n = min(progress.done + progress.skipped, bar.total)
            bar.refresh()

        try:
            progress = reindexer.run(versions, version, on_page)
            target.publish(settings.collection)
        except ReindexFailed as exc:
            say(f"vitrine: reindex failed its check, {live.id} stays live: {exc}")
            return 1
        finally:
            target.close()
            services.close()
    say(f"{version.id} is live: {progress.done} products encoded, {progress.skipped} already "
        f"there, {progress.removed} removed, {progress.failed} failed "
        f"{list(reindexer.failures.items())[:5] if reindexer.failures else ''}\n"
        f"Serve it with VITRINE_MODEL={model}")
    return 0


def promote(model: str, catalogue: str, metric: str = "attribute_precision@10",
            force: bool = False, say=print) -> int:
    """Compare `model` with the live version on the catalogue's held-out products; reindex
    into it only when it is measurably better on `metric` (or `force`), keeping the
    comparison with its version."""
    from training.compare import better, compare, format_report

    settings = CatalogueSettings()
    versions = registry(settings)
    live = versions.live()
    if live is None:
        say("vitrine: no live version to compare with; import a catalogue first")
        return 2
    report = compare(model, live.model, Path(catalogue))
    say(format_report(report))
    if not better(report, metric) and not force:
        m = report[metric]
        say(f"not promoted: {metric} {m['difference']:+.3f} ({m['low']:+.3f} to "
            f"{m['high']:+.3f}) is not measurably better than {live.id}; --force to "
            "promote anyway")
        return 1
    code = reindex(model, say)
    if code == 0:
        new = versions.live()
        if new is not None and new.id != live.id:
            versions.set_evaluation(new.id, {"against": live.id, "metric": metric,
                                             "report": report, **{
                                                 k: v["candidate"] for k, v in report.items()}})
    return code


def list_versions(say=print) -> int:
    versions = registry(CatalogueSettings()).list()
    if not versions:
        say("no model versions yet")
    for v in versions:
        evaluation = ", ".join(f"{k} {x:.3f}" for k, x in (v.evaluation or {}).items()
                               if isinstance(x, float))
        say(f"{'*' if v.state == 'live' else ' '} {v.id}  {v.state:8}  {v.dim}-d  {v.model}"
            f"{'  ' + evaluation if evaluation else ''}")
    return 0


def use(version_id: str, say=print) -> int:
    """Make a complete older version live again (a rollback)."""
    settings = CatalogueSettings()
    versions = registry(settings)
    version = versions.get(version_id)
    if version is None or version.state == "building":
        say(f"vitrine: no complete version {version_id!r} (see `vitrine models`)")
        return 2
    versions.make_live(version.id)
    if settings.store == "server":
        from vitrine.wiring import open_store

        store = open_store(settings, version.dim, None, version)
        store.publish(settings.collection)
        store.close()
    say(f"{version.id} is live: serve it with VITRINE_MODEL={version.model}")
    return 0


def remove(version_id: str, say=print) -> int:
    """Delete a version that is not live, and its vectors."""
    settings = CatalogueSettings()
    versions = registry(settings)
    version = versions.get(version_id)
    if version is None:
        say(f"vitrine: no version {version_id!r}")
        return 2
    if version.state == "live":
        say("vitrine: that version is live; make another one live first (`vitrine models use`)")
        return 2
    location = version.location or version.id
    if settings.store == "edge":
        if location != ".":
            shutil.rmtree(settings.shard_dir / location, ignore_errors=True)
    else:
        from catalogue.store.server import client_for

        client = client_for(settings.qdrant_url, settings.qdrant_api_key)
        client.delete_collection(version.location or f"{settings.collection}-{version.id}")
        client.close()
    versions.remove(version.id)
    say(f"removed {version.id}")
    return 0
