"""Zero-shot classification of a photo (or a stored product's image) against given labels."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from api.auth import SHOPPER
from api.deps import EncoderDep, ProductsDep, SettingsDep
from catalogue.images import decode_image
from catalogue.schemas import Role
from embedding.zeroshot import DEFAULT_TEMPLATES, classify

router = APIRouter(prefix="/v1", tags=["classify"])

MAX_LABELS = 100
MAX_TEMPLATES = 20

Labels = TypeAdapter(list[Annotated[str, Field(min_length=1, max_length=100)]])
Templates = TypeAdapter(list[Annotated[str, Field(min_length=2, max_length=200,
                                                  pattern=r"^[^{}]*\{\}[^{}]*$")]])


class LabelScore(BaseModel):
    label: str
    probability: float


class Classification(BaseModel):
    labels: list[LabelScore] = Field(description="Every label, most probable first")
    model: str


def parse_list(raw: str, adapter: TypeAdapter, name: str, most: int) -> list[str]:
    try:
        values = adapter.validate_python(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise HTTPException(422, f"{name} must be a JSON list of strings"
                                 f"{' each with one {} placeholder' if name == 'templates' else ''}"
                                 f": {exc}") from None
    if not values or len(values) > most:
        raise HTTPException(422, f"{name}: give 1 to {most}, not {len(values)}")
    if len(set(values)) != len(values):
        raise HTTPException(422, f"{name} has duplicates")
    return values


@router.post("/classify", response_model=Classification, dependencies=[SHOPPER])
def classify_image(
        encoder: EncoderDep, products: ProductsDep, settings: SettingsDep,
        labels: Annotated[str, Form(description='JSON list of labels, e.g. ["dress", "coat"]')],
        image: Annotated[UploadFile | None, File(description="A photo to classify")] = None,
        product_id: Annotated[str | None, Form(description="Classify this product's image")
                              ] = None,
        templates: Annotated[str | None, Form(description='JSON list of prompt templates with '
                                              'a {} placeholder, e.g. ["a photo of a {}"]')
                             ] = None):
    """Rank labels for an image: softmax over the model's logit scale times cosine, with
    prompt ensembles. A plain `def`: decoding and the model run in the thread pool."""
    names = parse_list(labels, Labels, "labels", MAX_LABELS)
    prompts = (parse_list(templates, Templates, "templates", MAX_TEMPLATES) if templates
               else list(DEFAULT_TEMPLATES))
    has_image = image is not None and bool(image.filename)
    if has_image == bool(product_id):
        raise HTTPException(422, "give either an image or a product_id")
    if image is not None and has_image:
        picture = decode_image(image.file.read(), settings.max_image_bytes,
                               settings.max_image_pixels)
        vector = encoder.encode_images([picture])
    else:  # hidden from shoppers here as in search: 404
        vector = products.vector(str(product_id), Role.shopper)[None]
    probs = classify(encoder, vector, names, prompts)
    ranked = sorted(zip(names, probs[0].tolist(), strict=True), key=lambda x: -x[1])
    return Classification(labels=[LabelScore(label=n, probability=p) for n, p in ranked],
                          model=encoder.model_id)
