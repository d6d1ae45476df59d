"""Contrastive losses for image-text training: CLIP's InfoNCE and SigLIP's sigmoid loss.

Both take L2-normalised embeddings and the *multiplicative* logit scale (the
exponential of the stored parameter), as open_clip's losses do. Row i of the
image batch and row i of the text batch are a positive pair. An optional
boolean `positives` matrix marks further positives: two products of one batch
with the same caption ("a red dress") are not negatives of each other, and
treating them as such teaches the model to tell apart what the text cannot.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# SigLIP paper, section 3.2: t' = log 10 and b = -10, so that the many easy
# negatives start with a small loss and do not swamp the few positives.
SIGLIP_INIT_LOG_SCALE = math.log(10.0)
SIGLIP_INIT_BIAS = -10.0


def _parameter(model: nn.Module, name: str) -> nn.Parameter:
    """The model's own `logit_scale` or `logit_bias`: CLIP and SigLIP keep them as plain
    Parameter attributes, which nn.Module's typing only knows as Tensor | Module."""
    param: nn.Parameter = getattr(model, name)
    return param


def _positives(n: int, positives: torch.Tensor | None, device) -> torch.Tensor:
    eye = torch.eye(n, dtype=torch.bool, device=device)
    return eye if positives is None else positives.to(device).bool() | eye


def info_nce_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
                  positives: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric CLIP cross-entropy over the batch's image-text similarities.

    `logit_scale` is the temperature multiplier (CLIP's `logit_scale.exp()`).
    With `positives`, each row's target is spread evenly over its positives.
    """
    logits = logit_scale * image_emb @ text_emb.t()
    n = logits.shape[0]
    if positives is None:
        labels = torch.arange(n, device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    target = _positives(n, positives, logits.device).float()
    image_to_text = -(target / target.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1)
    text_to_image = -(target / target.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0)
    return (image_to_text.mean() + text_to_image.mean()) / 2


def sigmoid_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
                 logit_bias: torch.Tensor, positives: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """SigLIP's pairwise loss: -sum_ij log sigmoid(z_ij (t x_i.y_j + b)) / n.

    z_ij is +1 for positive pairs (the diagonal) and -1 otherwise; the sum runs
    over all n^2 pairs and is divided by the batch size n, as in the paper.
    """
    logits = logit_scale * image_emb @ text_emb.t() + logit_bias
    n = logits.shape[0]
    signs = 2.0 * _positives(n, positives, logits.device).float() - 1.0
    return -F.logsigmoid(signs * logits).sum() / n


class ContrastiveHead(nn.Module):
    """The logit parameters a loss needs, taken from the model or added to it.

    CLIP models have a learnable `logit_scale` and no bias; SigLIP models have
    both. Training a CLIP model with the sigmoid loss adds a bias (initialised at
    -10) and restarts the scale at log(10), as the SigLIP paper prescribes; so does
    a SigLIP model trained from scratch (`fresh`). A pretrained SigLIP keeps its
    own values. The scale stays the model's own parameter, so saving the model
    saves it; an added bias is reported by `extra_state()` for the training record.
    """

    def __init__(self, model: nn.Module, loss: str = "infonce", fresh: bool = False):
        super().__init__()
        if loss not in ("infonce", "sigmoid"):
            raise ValueError(f"unknown loss {loss!r}: use 'infonce' or 'sigmoid'")
        self.loss = loss
        self.model = [model]  # a list, so the model's parameters are not registered twice
        self.owns_bias = False
        if loss == "sigmoid" and getattr(model, "logit_bias", None) is None:
            with torch.no_grad():
                _parameter(model, "logit_scale").fill_(SIGLIP_INIT_LOG_SCALE)
            self.logit_bias = nn.Parameter(torch.tensor(SIGLIP_INIT_BIAS))
            self.owns_bias = True
        elif loss == "sigmoid" and fresh:
            with torch.no_grad():
                _parameter(model, "logit_scale").fill_(SIGLIP_INIT_LOG_SCALE)
                _parameter(model, "logit_bias").fill_(SIGLIP_INIT_BIAS)

    @property
    def log_scale(self) -> nn.Parameter:
        return _parameter(self.model[0], "logit_scale")

    @property
    def bias(self) -> torch.Tensor | None:
        return self._sigmoid_bias() if self.loss == "sigmoid" else None

    def _sigmoid_bias(self) -> torch.Tensor:
        return self.logit_bias if self.owns_bias else _parameter(self.model[0], "logit_bias")

    def forward(self, image_emb: torch.Tensor, text_emb: torch.Tensor,
                positives: torch.Tensor | None = None) -> torch.Tensor:
        # CLIP clamps the scale at 100 so the logits cannot run away.
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()
        if self.loss == "infonce":
            return info_nce_loss(image_emb, text_emb, scale, positives)
        return sigmoid_loss(image_emb, text_emb, scale, self._sigmoid_bias(), positives)

    def extra_state(self) -> dict:
        """The logit parameters as numbers, for the training record."""
        state = {"logit_scale": self.log_scale.exp().item()}
        if self.bias is not None:
            state["logit_bias"] = self.bias.item()
        return state
