"""An auxiliary loss for training: tell each product's visible attributes (article
type, colour, pattern) from its image embedding.

The contrastive loss teaches the image tower what captions state, but only through
the captions a batch happens to draw, and a pattern is the attribute it learns last:
on the demo catalogue a model trained contrastively for 10 minutes told the pattern of
only 0.68 of held-out products by a linear probe on its image vectors. A linear
classifier per attribute on the same normalised embedding, trained beside it, gives
every image its labels at every step (BENCHMARKS.md, "Patterns"). The heads are
training scaffolding: they are not part of the saved model, and a product without a
value for an attribute (a live catalogue's patchy metadata) simply adds nothing to that
head's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from catalogue.captions import VISIBLE

IGNORE = -100  # F.cross_entropy's ignore_index: no value for this product


class AttributeHeads(nn.Module):
    """One linear classifier a visible attribute, over the L2-normalised image embedding."""

    labels: torch.Tensor  # (rows, columns): each row's value index, IGNORE where it has none

    def __init__(self, rows: list[dict], embed_dim: int, columns: tuple[str, ...] = VISIBLE,
                 scale: float = 10.0):
        super().__init__()
        self.scale = scale  # a cosine classifier's temperature: unit vectors give small logits
        values = {c: sorted({r[c] for r in rows if r.get(c)}) for c in columns}
        self.columns = tuple(c for c in columns if len(values[c]) > 1)  # one value says nothing
        labels = [[values[c].index(r[c]) if r.get(c) else IGNORE for c in self.columns]
                  for r in rows]
        self.register_buffer("labels", torch.tensor(labels, dtype=torch.long).reshape(
            len(rows), len(self.columns)), persistent=False)
        self.heads = nn.ModuleList(nn.Linear(embed_dim, len(values[c])) for c in self.columns)

    def forward(self, image_emb: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The mean cross-entropy over the attributes of the products at `index` (rows
        of the training set), `image_emb` their normalised embeddings."""
        labels = self.labels[index.to(self.labels.device)]
        losses = [F.cross_entropy(self.scale * head(image_emb), labels[:, k], ignore_index=IGNORE)
                  for k, head in enumerate(self.heads) if (labels[:, k] != IGNORE).any()]
        return torch.stack(losses).mean() if losses else image_emb.sum() * 0.0
