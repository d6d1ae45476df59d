"""The catalogue schema: which attributes a shop filters, facets and sorts by.

A shop declares its attributes in a JSON file (`VITRINE_CATALOGUE_SCHEMA`):
name, type (keyword, number, boolean, date), level (the product, or each
variant) and whether it is filterable, facetable or sortable. Everything that
follows from that is decided here, once: where the value lives in a stored
payload, which payload indexes the store keeps, how query parameters become a
store filter, and which values a payload holds for a facet. Values of
undeclared attributes are kept and returned, never filtered on.

The default schema is the fields Vitrine always had (category, colour, gender,
brand, pattern, tags, price) plus a variant's size and availability, so a shop
that declares nothing keeps working as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from catalogue.store.filters import Filter

VARIANTS = "variants"
IDENTIFIERS = ("sku", "gtin", "mpn")
"""A variant's identifiers: a query naming one finds its product first (catalogue.search),
so each is indexed (`CatalogueSchema.indexes`)."""
# Fields a product or variant has by itself; any other attribute lives in `attributes`.
PRODUCT_FIELDS = ("category", "colour", "gender", "brand", "pattern", "tags", "price")
VARIANT_FIELDS = ("sku", "colour", "size", "price", "compare_at_price", "availability")
# Sorting by a variant-level price means by the product's lowest price (`min_price`,
# kept by catalogue.products.normalise), the "from" price a shop shows.
NEWEST = "newest"


class AttributeType(StrEnum):
    keyword = "keyword"
    number = "number"
    boolean = "boolean"
    date = "date"  # ISO 8601 text


class Attribute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    type: AttributeType = AttributeType.keyword
    level: Literal["product", "variant"] = "product"
    filterable: bool = True
    facetable: bool = False
    sortable: bool = False
    searchable: bool = False
    """Its values are words keyword search finds the product by (the built-in fields,
    title, brand, description, tags, SKUs, always are)."""
    label: str | None = Field(None, max_length=100, description="What the shop page calls it")

    @model_validator(mode="after")
    def _sensible(self) -> Attribute:
        if self.sortable and self.level == "variant" and self.name != "price":
            raise ValueError(f"{self.name}: only product-level attributes (and price) sort")
        if self.facetable and self.type is not AttributeType.keyword \
                and self.type is not AttributeType.boolean:
            raise ValueError(f"{self.name}: only keyword and boolean attributes facet")
        return self

    @property
    def key(self) -> str:
        """Where the value lives inside a product, or inside one variant."""
        own = PRODUCT_FIELDS if self.level == "product" else VARIANT_FIELDS
        return self.name if self.name in own else f"attributes.{self.name}"

    @property
    def path(self) -> str:
        """The payload path the store indexes and facets on."""
        return f"{VARIANTS}[].{self.key}" if self.level == "variant" else self.key

    @property
    def sort_path(self) -> str:
        return "min_price" if self.name == "price" else self.path


class InvalidFilter(ValueError):
    """A query parameter that is no filter of this catalogue, or a value of the wrong type."""


class CatalogueSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attributes: list[Attribute]

    @model_validator(mode="after")
    def _unique(self) -> CatalogueSchema:
        names = [a.name for a in self.attributes]
        if len(names) != len(set(names)):
            raise ValueError("an attribute is declared twice")
        return self

    @classmethod
    def load(cls, path: Path | None) -> CatalogueSchema:
        """The schema in `path`, or the default one; ValueError naming what is wrong."""
        if path is None:
            return DEFAULT_SCHEMA
        try:
            return cls.model_validate(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"catalogue schema {path} (VITRINE_CATALOGUE_SCHEMA): {exc}") from exc

    def get(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    @property
    def facetable(self) -> list[Attribute]:
        return [a for a in self.attributes if a.facetable]

    @property
    def sort_orders(self) -> list[str]:
        """What `sort` may be: relevance, newest, and <attribute>_asc|_desc."""
        return ["relevance", NEWEST] + [f"{a.name}_{d}" for a in self.attributes if a.sortable
                                         for d in ("asc", "desc")]

    def sort_key(self, sort: str) -> tuple[str, bool] | None:
        """(payload path, descending) for a sort order; None for relevance."""
        if sort == "relevance":
            return None
        if sort == NEWEST:
            return "created_at", True
        name, _, direction = sort.rpartition("_")
        attribute = self.get(name)
        if attribute is None or not attribute.sortable or direction not in ("asc", "desc"):
            raise InvalidFilter(f"sort must be one of {', '.join(self.sort_orders)}")
        return attribute.sort_path, direction == "desc"

    def indexes(self) -> list[tuple[str, AttributeType]]:
        """Payload indexes: every filterable, facetable or sortable attribute's path, and
        the variants' identifiers (without, looking one up scans every product)."""
        return [(a.path, a.type) for a in self.attributes
                if a.filterable or a.facetable or a.sortable] + \
            [(a.sort_path, a.type) for a in self.attributes
             if a.sortable and a.sort_path != a.path] + \
            [(f"{VARIANTS}[].{key}", AttributeType.keyword) for key in IDENTIFIERS]

    def filter(self, params: Mapping[str, Sequence[str]], reserved: Iterable[str] = ()) -> Filter:
        """Query parameters -> store filter: `name=v` (repeatable: any of) for keywords and
        booleans, `name_min`/`name_max` for numbers and dates. Variant conditions hold on
        one variant together (a red M in stock, not a red S and a blue M)."""
        product, variant = Filter(), Filter()
        skip = set(reserved)
        for param, values in params.items():
            if param in skip or not values:
                continue
            attribute, bound = self._attribute_of(param)
            target = variant if attribute.level == "variant" else product
            key = attribute.key if attribute.level == "variant" else attribute.path
            if bound:
                lo, hi = target.range.get(key, (None, None))
                value = _number(param, values[-1]) if attribute.type is AttributeType.number \
                    else _date(param, values[-1])
                target.range[key] = (value, hi) if bound == "min" else (lo, value)
            elif attribute.type is AttributeType.boolean:
                target.match[key] = _boolean(param, values[-1])
            else:
                target.any[key] = list(values)
        if not variant.is_empty():
            product.nested[VARIANTS] = variant
        return product

    def _attribute_of(self, param: str) -> tuple[Attribute, str | None]:
        name, bound = param, None
        for suffix in ("min", "max"):
            if param.endswith(f"_{suffix}") and self.get(param) is None:
                name, bound = param[: -len(suffix) - 1], suffix
        attribute = self.get(name)
        ranged = attribute is not None and attribute.type in (AttributeType.number,
                                                              AttributeType.date)
        if attribute is None or not attribute.filterable or bool(bound) != ranged:
            raise InvalidFilter(f"unknown filter {param!r}: GET /v1/schema lists the "
                                "filterable attributes (numbers and dates take _min/_max)")
        return attribute, bound

    def values(self, payload: Mapping[str, Any], attribute: Attribute) -> set[str]:
        """The values a stored product holds for `attribute` (each variant's, at that level)."""
        holders = payload.get(VARIANTS) or [] if attribute.level == "variant" else [payload]
        found: set[str] = set()
        for holder in holders:
            value = holder.get(attribute.key) if "." not in attribute.key else \
                (holder.get("attributes") or {}).get(attribute.name)
            for v in value if isinstance(value, list) else [value]:
                if v is not None:
                    found.add(str(v).lower() if isinstance(v, bool) else str(v))
        return found


def _number(param: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidFilter(f"{param} must be a number, not {raw[:50]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidFilter(f"{param} must be a finite number")
    return value


def _date(param: str, raw: str) -> str:
    from datetime import datetime

    try:
        datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidFilter(f"{param} must be an ISO 8601 date, not {raw[:50]!r}") from None
    return raw


def _boolean(param: str, raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise InvalidFilter(f"{param} must be true or false, not {raw[:50]!r}")


DEFAULT_SCHEMA = CatalogueSchema(attributes=[
    Attribute(name="category", facetable=True),
    Attribute(name="colour", level="variant", facetable=True),
    Attribute(name="size", level="variant", facetable=True),
    Attribute(name="availability", level="variant", facetable=True),
    Attribute(name="gender", facetable=True),
    Attribute(name="brand", facetable=True),
    Attribute(name="pattern"),
    Attribute(name="tags"),
    Attribute(name="price", type=AttributeType.number, level="variant", sortable=True),
])
