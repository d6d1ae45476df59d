"""Moderation: every ingested image is scored against a policy of prohibited categories.

The policy (a JSON file: categories with prompts and thresholds, plus prompts of a
normal product photo) is read from settings. At or above its category's threshold
an image is stored but flagged: hidden from shoppers (catalogue.search.store_filter)
and listed in the moderation queue until a manager decides. Decisions are kept by
image SHA-256, so they outlive the product: an approved image is not flagged again
and a rejected one is not indexed again, under any product id.

Where things are:
- policy: the policy file, its settings and overrides, the labelled examples;
- decisions: managers' decisions (SQLite or PostgreSQL);
- moderator: scoring, verdicts, and the ingest enricher;
- queue: the HTTP-facing queue and applying a decision;
- calibration: thresholds and examples from labelled images
  (`vitrine calibrate-moderation`).

The names below are re-exported so callers import from `catalogue.moderation`.
"""

from catalogue.moderation.calibration import (
    NO_LABEL_MARGIN,
    CategoryCalibration,
    calibrate,
    calibrate_on,
    calibrate_policy_file,
    calibrate_threshold,
    encode_files,
    evaluate,
    format_calibration,
    labelled_catalogue,
    precision_recall,
    run_calibration,
)
from catalogue.moderation.decisions import (
    DECISIONS_SCHEMA,
    Decision,
    DecisionStore,
    decisions_path,
)
from catalogue.moderation.moderator import REJECTED_REASON, VERBATIM, Moderator, Verdict
from catalogue.moderation.policy import (
    DEFAULT_POLICY,
    POLICY_FILENAME,
    CategoryPolicy,
    Examples,
    ModerationPolicy,
    ModerationSettings,
    examples_path,
)
from catalogue.moderation.queue import (
    ModerationItem,
    ModerationQueue,
    decide,
    queue_item,
    read_queue,
)

__all__ = [
    "DECISIONS_SCHEMA",
    "DEFAULT_POLICY",
    "NO_LABEL_MARGIN",
    "POLICY_FILENAME",
    "REJECTED_REASON",
    "VERBATIM",
    "CategoryCalibration",
    "CategoryPolicy",
    "Decision",
    "DecisionStore",
    "Examples",
    "ModerationItem",
    "ModerationPolicy",
    "ModerationQueue",
    "ModerationSettings",
    "Moderator",
    "Verdict",
    "calibrate",
    "calibrate_on",
    "calibrate_policy_file",
    "calibrate_threshold",
    "decide",
    "decisions_path",
    "encode_files",
    "evaluate",
    "examples_path",
    "format_calibration",
    "labelled_catalogue",
    "precision_recall",
    "queue_item",
    "read_queue",
    "run_calibration",
]
