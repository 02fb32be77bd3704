"""The named choices of the pipeline, each defined once as a ``Literal`` type: the configs check against them,
the command line offers them (``click.Choice(get_args(...))``) and the reasoning dispatches on them."""

from __future__ import annotations

from typing import Literal, get_args

#: the occlusion reasoning: ``off`` (independent objects), ``nod`` (per-pixel competition only) or ``od`` (the
#: whole conflict goes to the object in front)
Reasoning = Literal["off", "nod", "od"]
#: the reasoning's per-pixel competition; ``head_colour``: the mask head's logits where they are clear, the colour
#: models elsewhere; ``auto``: colour when the image is given and refinement is on
Competition = Literal["auto", "colour", "foreground", "margin", "head", "head_colour"]
#: the competitions that need the image and refine the masks before competing (at image resolution)
IMAGE_COMPETITIONS: tuple[str, ...] = ("colour", "head", "head_colour")
#: the competitions that need the mask head
HEAD_COMPETITIONS: tuple[str, ...] = ("head", "head_colour")
#: what decides who is in front of an overlapping pair; ``gated``: the part-position vote where it is sure, the
#: competition's pixel counts elsewhere; ``auto``: position when the model has the classifier
OrderCue = Literal["auto", "counts", "position", "gated"]
#: the order cues that read the part-position vote (the model must have the classifier)
VOTE_ORDER_CUES: tuple[str, ...] = ("position", "gated")
#: an object's hidden part: ``occluder`` (the cells labelled occluder inside the shape prior), ``front`` (those and
#: the cells' amodal shape under the objects the reasoning puts in front) or ``shape`` (the cells' amodal shape less
#: the visible mask: with a mask head, its "no object" inside the shape is hidden), ``agree`` (``front``, and the pixels
#: seen in an object behind leave the amodal mask of the object in front, so the masks agree with the order);
#: ``auto``: agree with a mask head, else occluder
HiddenPart = Literal["auto", "occluder", "front", "shape", "agree"]
#: what the given boxes of a scene are
BoxKind = Literal["amodal", "visible"]
#: which box of an annotation a model is given; ``auto``: amodal where the data has one
BoxChoice = Literal["auto", "amodal", "visible"]


def choices(kind: object) -> tuple[str, ...]:
    """The values of a ``Literal`` choice type, in order (``choices(Reasoning) == ("off", "nod", "od")``)."""
    return tuple(get_args(kind))


def check_choice(what: str, value: object, kind: object) -> str:
    """``value`` when it is one of ``kind``'s values, else a ``ValueError`` naming ``what`` and the values."""
    allowed = choices(kind)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{what} must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {value!r}")
    return value
