"""The mask head: a few convolutions from the two backbone blocks (and the CompNet's cells) to per-cell logits at
the finer block's stride."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from occseg.head.config import COMPNET_CHANNELS, EXTRA_CHANNELS, HeadSettings


class MaskHead(nn.Module):
    """``forward(coarse, fine, extra, compnet)`` -> ``(B, 1, h, w)`` object logits on the fine cells.

    ``coarse``: ``(B, C, h / 2, w / 2)`` stride-16 features; ``fine``: ``(B, C', h, w)``; ``extra``:
    ``(B, 7, h, w)`` (:func:`occseg.head.inputs.extra_channels`); ``compnet``: ``(B, 6, h / 2, w / 2)`` or None
    when the head takes no CompNet inputs. Features are L2-normalised per cell first."""

    def __init__(self, settings: HeadSettings) -> None:
        super().__init__()
        self.settings = settings
        w = settings.width
        cin = settings.coarse_channels + (COMPNET_CHANNELS if settings.compnet_inputs else 0)
        self.coarse = nn.Conv2d(cin, w, 1)
        self.fine = nn.Conv2d(settings.fine_channels, w // 2, 1)
        self.body = nn.Sequential(
            nn.Conv2d(w + w // 2 + EXTRA_CHANNELS, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 1, 1),
        )

    def forward(
        self, coarse: torch.Tensor, fine: torch.Tensor, extra: torch.Tensor, compnet: torch.Tensor | None
    ) -> torch.Tensor:
        c = F.normalize(coarse, dim=1) * 4.0
        if self.settings.compnet_inputs:
            if compnet is None:
                raise ValueError("this mask head takes the CompNet's cell terms as inputs; none were given")
            c = torch.cat([c, compnet], 1)
        c = F.relu(self.coarse(c))
        c = F.interpolate(c, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        f = F.relu(self.fine(F.normalize(fine, dim=1) * 4.0))
        return self.body(torch.cat([c, f, extra], 1))
