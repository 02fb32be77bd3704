"""The Occlusion Challenge generator: whole segmented objects pasted over backgrounds with exact amodal masks.

Entry point: :func:`generate_challenge` with a :class:`ChallengeConfig` (the ``occseg make-challenge`` command).
"""

from occseg.challenge.composer import SCENARIOS, PlacementConfig
from occseg.challenge.generator import ChallengeConfig, ChallengeResult, generate_challenge
from occseg.challenge.objects import CutOut, Selection, SelectionConfig, select_objects

__all__ = [
    "SCENARIOS",
    "ChallengeConfig",
    "ChallengeResult",
    "CutOut",
    "PlacementConfig",
    "Selection",
    "SelectionConfig",
    "generate_challenge",
    "select_objects",
]
