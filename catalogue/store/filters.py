"""The domain's filter, and its one translation into both engines' filter objects.

The embedded engine (qdrant_edge) and qdrant-client build filters from the same
condition classes, so `to_engine_filter` is written once for both (`FilterModels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


@dataclass
class Filter:
    """Conditions on payload fields, all of which must hold."""

    match: dict[str, Any] = field(default_factory=dict)  # field == value
    any: dict[str, Sequence[Any]] = field(default_factory=dict)  # field in values
    # field within [lo, hi]: numbers, or ISO 8601 text for dates
    range: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    exclude: dict[str, Sequence[Any]] = field(default_factory=dict)  # field not in values
    exclude_ids: Sequence[str] = ()  # point ids left out
    ids: Sequence[str] | None = None  # the point ids kept (None: any)
    # array field -> conditions one of its objects must meet together (variants)
    nested: dict[str, Filter] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.match or self.any or self.range or self.exclude or self.exclude_ids
                    or self.nested or self.ids is not None)

    def conditions(self) -> int:
        """How many field conditions (a range on one field is one)."""
        return (len(self.match) + len(self.any) + len(self.range) + len(self.exclude)
                + len(self.nested) + bool(self.exclude_ids) + (self.ids is not None))

    def both(self, other: Filter) -> Filter:
        """The conditions of both (on one field, `other`'s; nested ones merged likewise)."""
        nested = {k: self.nested.get(k, Filter()).both(other.nested.get(k, Filter()))
                  for k in self.nested.keys() | other.nested.keys()}
        ids = self.ids if other.ids is None else other.ids if self.ids is None else \
            sorted(set(self.ids) & set(other.ids))
        return Filter(self.match | other.match, self.any | other.any, self.range | other.range,
                      self.exclude | other.exclude, [*self.exclude_ids, *other.exclude_ids],
                      ids, nested)

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether `obj` (one variant, say) meets the conditions, as the engine judges them;
        ids are not checked. Dotted keys reach into nested objects."""
        def values(key: str) -> list[Any]:
            value: Any = obj
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return value if isinstance(value, list) else [] if value is None else [value]

        def within(v: Any, lo: Any, hi: Any) -> bool:
            try:
                return (lo is None or v >= lo) and (hi is None or v <= hi)
            except TypeError:
                return False

        return (all(v in values(k) for k, v in self.match.items())
                and all(set(values(k)) & set(vs) for k, vs in self.any.items())
                and all(any(within(v, lo, hi) for v in values(k))
                        for k, (lo, hi) in self.range.items())
                and not any(set(values(k)) & set(vs) for k, vs in self.exclude.items())
                and all(any(f.matches(o) for o in values(k) if isinstance(o, dict))
                        for k, f in self.nested.items()))


class FilterModels(NamedTuple):
    """One engine's filter classes, for `to_engine_filter`.

    qdrant_edge and qdrant_client.models take the same keywords for `Filter(must,
    must_not)`, `FieldCondition(key, match, range)`, `MatchValue(value)` and
    `MatchAny(any)`; they differ only in the float range's class name (`RangeFloat`,
    `Range`) and in the id condition's argument, hence `Range` and `has_id` here.
    """

    Filter: Callable[..., Any]
    FieldCondition: Callable[..., Any]
    MatchValue: Callable[..., Any]
    MatchAny: Callable[..., Any]
    Range: Callable[..., Any]  # gte=, lte=
    DateRange: Callable[..., Any]  # gte=, lte= (ISO 8601)
    has_id: Callable[[set[str]], Any]  # the condition "point id is one of these"
    nested: Callable[[str, Any], Any]  # the condition "an object of this array meets that"


def to_engine_filter(f: Filter | None, models: FilterModels) -> Any:
    """`f` as the engine's filter object, or None (no filter) when `f` has no conditions."""
    if f is None or f.is_empty():
        return None
    must: list = [models.FieldCondition(key=k, match=models.MatchValue(value=v))
                  for k, v in f.match.items()]
    must += [models.FieldCondition(key=k, match=models.MatchAny(any=list(v)))
             for k, v in f.any.items()]
    must += [models.FieldCondition(key=k, range=(
        models.DateRange if isinstance(lo, str) or isinstance(hi, str) else models.Range)(
            gte=lo, lte=hi)) for k, (lo, hi) in f.range.items()]
    for k, nested in f.nested.items():
        if nested.is_empty():
            continue
        if nested.conditions() == 1 and not nested.exclude:
            # One condition holds on one object as plainly as nested, and the engine reads
            # every candidate's payload for a nested one (50 ms against 3 at 100k).
            plain = Filter({f"{k}[].{x}": v for x, v in nested.match.items()},
                           {f"{k}[].{x}": v for x, v in nested.any.items()},
                           {f"{k}[].{x}": v for x, v in nested.range.items()})
            must += to_engine_filter(plain, models).must
        else:
            must.append(models.nested(k, to_engine_filter(nested, models)))
    # must_not + MatchAny rather than MatchExcept: a point without the field is kept.
    must_not: list = [models.FieldCondition(key=k, match=models.MatchAny(any=list(v)))
                      for k, v in f.exclude.items()]
    if f.exclude_ids:
        must_not.append(models.has_id(set(f.exclude_ids)))
    if f.ids is not None:
        must.append(models.has_id(set(f.ids)))
    return models.Filter(must=must or None, must_not=must_not or None)
