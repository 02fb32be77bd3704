"""Each choice is defined once (occseg.choices) and offered by the configs and the command line alike."""

from __future__ import annotations

import click
import pytest

from occseg.choices import BoxChoice, BoxKind, Competition, OrderCue, Reasoning, check_choice, choices
from occseg.cli.main import cli
from occseg.inference.scene import SceneConfig


def _choice(command: str, option: str) -> tuple[str, ...]:
    param = next(p for p in cli.commands[command].params if p.name == option)
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_the_command_line_offers_the_choices_the_configs_take():
    assert (
        choices(Reasoning) == ("off", "nod", "od") == _choice("predict", "reasoning") == _choice("segment", "reasoning")
    )
    assert choices(OrderCue) == ("auto", "counts", "position", "gated") == _choice("segment", "order_cue")
    assert _choice("predict", "boxes") == choices(BoxChoice) and _choice("segment", "box_type") == choices(BoxKind)
    for mode in choices(Reasoning):
        for cue in choices(OrderCue):
            for competition in choices(Competition):
                SceneConfig(reasoning=mode, order=cue, competition=competition)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reasoning", "full", "reasoning must be off, nod or od, not 'full'"),
        ("order", "depth", "order must be auto, counts, position or gated, not 'depth'"),
        (
            "competition",
            "votes",
            "competition must be auto, colour, foreground, margin, head or head_colour, not 'votes'",
        ),
        ("boxes", "tight", "boxes must be amodal or visible, not 'tight'"),
    ],
)
def test_a_config_names_the_setting_and_its_choices(field, value, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**{field: value})


def test_check_choice_refuses_what_is_not_a_string():
    assert check_choice("mode", "od", Reasoning) == "od"
    with pytest.raises(ValueError, match="mode must be off, nod or od, not 1"):
        check_choice("mode", 1, Reasoning)
