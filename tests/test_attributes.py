"""The auxiliary attribute loss (training.attributes): what it labels and what it teaches."""

import torch
import torch.nn.functional as F

from training.attributes import IGNORE, AttributeHeads

ROWS = [
    {"articleType": "Dresses", "baseColour": "Red", "pattern": "floral"},
    {"articleType": "Dresses", "baseColour": "Red", "pattern": "dotted"},
    {"articleType": "Dresses", "baseColour": "Red", "pattern": ""},  # patchy metadata
    {"articleType": "Dresses", "baseColour": "Red", "pattern": "striped"},
]


def test_heads_label_what_a_row_shows_and_ignore_what_it_lacks():
    heads = AttributeHeads(ROWS, embed_dim=8)
    # one article type and one colour tell nothing apart: only the pattern gets a head
    assert heads.columns == ("pattern",)
    assert heads.labels[:, 0].tolist() == [1, 0, IGNORE, 2]
    assert heads.heads[0].out_features == 3


def test_a_batch_without_labels_adds_nothing_and_still_backpropagates():
    heads = AttributeHeads(ROWS, embed_dim=8)
    emb = F.normalize(torch.randn(1, 8), dim=-1).requires_grad_()
    loss = heads(emb, torch.tensor([2]))
    loss.backward()
    assert loss.item() == 0.0 and emb.grad is not None


def test_the_loss_pulls_image_embeddings_apart_by_pattern():
    torch.manual_seed(0)
    rows = [dict(r, pattern=p) for p in ("floral", "dotted", "striped") for r in ROWS[:1] * 8]
    heads = AttributeHeads(rows, embed_dim=16)
    free = torch.nn.Parameter(torch.randn(len(rows), 16))  # stand-ins for image embeddings
    optimizer = torch.optim.Adam([free, *heads.parameters()], lr=0.05)
    index = torch.arange(len(rows))

    def separation() -> float:
        # mean cosine between two products of a pattern minus across patterns
        emb = F.normalize(free.detach(), dim=-1)
        sim = emb @ emb.T
        same = heads.labels[:, 0][:, None] == heads.labels[:, 0][None, :]
        other = ~torch.eye(len(rows), dtype=torch.bool)
        return (sim[same & other].mean() - sim[~same].mean()).item()

    before = separation()
    for _ in range(100):
        loss = heads(F.normalize(free, dim=-1), index)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert abs(before) < 0.1 and separation() > 0.3
