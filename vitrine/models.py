"""`vitrine reindex` and `vitrine models`: put another model into service, or an old one
back, without mixing two models' vectors (catalogue.versions, catalogue.reindex).

Both work on a stopped local profile (the embedded store is one process's) or against a
cluster's Qdrant server and PostgreSQL while it serves: the live version stays live
until the new one is complete and checked. `plan` and `execute` are the one reindex
path: the command runs them, and so does `POST /v1/models/reindex` (vitrine.lifecycle)
inside a serving process.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from tqdm import tqdm

from catalogue.attributes import CatalogueSchema
from catalogue.keywords import Keywords
from catalogue.lifecycle import AlreadyLive
from catalogue.media import MediaStore
from catalogue.reindex import Progress, Reindexer, ReindexFailed
from catalogue.settings import CatalogueSettings
from catalogue.store.base import VectorStore
from catalogue.versions import ModelVersion, Versions
from embedding.encoder import Encoder, ModelLoadError


class NoCatalogue(RuntimeError):
    """No live version yet: nothing to reindex."""


def registry(settings: CatalogueSettings) -> Versions:
    return Versions(settings.jobs_url or settings.jobs_db)


@dataclass
class Plan:
    """A reindex ready to run: the new model loaded, its version recorded, its store open."""

    settings: CatalogueSettings
    versions: Versions
    live: ModelVersion
    version: ModelVersion
    encoder: Encoder
    schema: CatalogueSchema
    target: VectorStore


def plan(settings: CatalogueSettings, versions: Versions, encoder: Encoder) -> Plan:
    """Record the version of a loaded model and open its store. Raises AlreadyLive for the
    live version's own model (and RuntimeError with no catalogue at all)."""
    from vitrine.wiring import open_store

    live = versions.live()
    if live is None:
        raise NoCatalogue("no catalogue yet, nothing to reindex (import one, it is encoded "
                          "with VITRINE_MODEL)")
    version = ModelVersion.of(encoder)
    if version.id == live.id:
        raise AlreadyLive(f"{encoder.model_id} is the live version already ({live.id}): "
                          "nothing to do")
    version = versions.add(version)
    schema = CatalogueSchema.load(settings.catalogue_schema)
    target = open_store(settings, encoder.dim, schema, version)
    return Plan(settings, versions, live, version, encoder, schema, target)


def execute(plan: Plan, live_store: VectorStore, media: MediaStore,
            on_page: Callable[[Progress], None] | None = None,
            quiet: AbstractContextManager | None = None,
            on_live: Callable[[], None] | None = None) -> tuple[Progress, Reindexer]:
    """Re-encode the live store's products into the plan's version, check it and switch:
    the registry, the server alias, each version's product count, then `on_live` (with
    writes still held by `quiet`). Raises ReindexFailed, the live version untouched."""
    settings = plan.settings
    reindexer = Reindexer(settings, live_store, plan.target, plan.encoder, media,
                          Keywords.configured(plan.schema, settings))

    def switch() -> None:
        plan.target.publish(settings.collection)  # on a server, the alias moves here
        plan.versions.set_products(plan.live.id, live_store.count())
        plan.versions.set_products(plan.version.id, plan.target.count())
        plan.versions.set_keyword_scheme(plan.version.id, reindexer.keywords.scheme)
        if on_live:
            on_live()

    return reindexer.run(plan.versions, plan.version, on_page, quiet, switch), reindexer


def summary(plan: Plan, progress: Progress, reindexer: Reindexer) -> str:
    failures = list(reindexer.failures.items())[:5]
    return (f"{plan.version.id} is live: {progress.done} products encoded, {progress.skipped} "
            f"already there, {progress.removed} removed, {progress.failed} failed"
            f"{' ' + str(failures) if failures else ''}")


def reindex(model: str, say=print) -> int:
    """Re-encode the live catalogue with `model` into its own version; make it live."""
    from vitrine.wiring import build_services

    settings = CatalogueSettings()
    versions = registry(settings)
    try:
        if versions.live() is None:  # before loading a model, which may download
            raise NoCatalogue("no catalogue yet, nothing to reindex (import one, it is "
                              "encoded with VITRINE_MODEL)")
        prepared = plan(settings, versions, Encoder(model=model).load())
    except AlreadyLive as exc:
        say(str(exc))
        return 0
    except (ModelLoadError, NoCatalogue) as exc:
        say(f"vitrine: {exc}")
        return 2
    # The live model's parts: its store, media, and the data folder's lock.
    services = build_services(encoder=Encoder(model=prepared.live.model))
    with tqdm(total=services.store.count(), desc=f"reindexing into {prepared.version.id}",
              unit="product") as bar:
        def on_page(progress: Progress) -> None:
            bar.total = max(bar.total or 0, progress.total)
            bar.n = min(progress.done + progress.skipped, bar.total)
            bar.refresh()

        try:
            progress, reindexer = execute(prepared, services.store, services.media, on_page)
        except ReindexFailed as exc:
            say(f"vitrine: reindex failed its check, {prepared.live.id} stays live: {exc}")
            return 1
        finally:
            prepared.target.close()
            services.close()
    say(f"{summary(prepared, progress, reindexer)}\nServe it with VITRINE_MODEL={model}")
    return 0


def promote(model: str, catalogue: str | None = None, metric: str = "attribute_precision@10",
            force: bool = False, say=print) -> int:
    """Compare `model` with the live version on held-out products (of a styles.csv, or of
    the live catalogue without one); reindex into it only when it is measurably better on
    `metric` (or `force`), keeping the comparison with its version."""
    from training.compare import better, compare, format_report
    from vitrine.train import catalogue_or_live

    settings = CatalogueSettings()
    versions = registry(settings)
    live = versions.live()
    if live is None:
        say("vitrine: no live version to compare with; import a catalogue first")
        return 2
    try:
        data = catalogue_or_live(catalogue)
        report = compare(model, live.model, data)
    except (OSError, ValueError, LookupError) as exc:
        say(f"vitrine: {exc}")
        return 2
    say(f"{model} against the live {live.id} on {data.source}")
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
