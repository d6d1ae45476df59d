"""Zero-shot classification of a photo (or a stored product's image) against given labels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from api.auth import SHOPPER
from api.deps import EncoderDep, ProductsDep, SettingsDep
from api.errors import ApiProblem, responses
from api.ratelimit import SEARCH_LIMIT
from catalogue.images import decode_with, model_input_size
from catalogue.jsonsafe import JsonInputError, parse_json
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
        values = adapter.validate_python(parse_json(raw))
    except (JsonInputError, ValidationError) as exc:
        raise ApiProblem(422, f"{name} must be a JSON list of strings"
                              f"{' each with one {} placeholder' if name == 'templates' else ''}"
                              f": {exc}", field=name,
                         code="invalid_json" if isinstance(exc, JsonInputError) else None
                         ) from None
    if not values or len(values) > most:
        raise ApiProblem(422, f"{name}: give 1 to {most}, not {len(values)}", field=name)
    if len(set(values)) != len(values):
        raise ApiProblem(422, f"{name} has duplicates", field=name)
    return values


@router.post("/classify", response_model=Classification,
             dependencies=[SHOPPER, SEARCH_LIMIT],
             responses=responses(400, 401, 404, 413, 422, 429, 503))
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
        picture = decode_with(settings, image.file.read(),
                              model_input_size(encoder.preprocess))
        vector = encoder.encode_images([picture])
    else:  # hidden from shoppers here as in search: 404
        vector = products.vector(str(product_id), Role.shopper)[None]
    probs = classify(encoder, vector, names, prompts)
    ranked = sorted(zip(names, probs[0].tolist(), strict=True), key=lambda x: -x[1])
    return Classification(labels=[LabelScore(label=n, probability=p) for n, p in ranked],
                          model=encoder.model_id)
