"""occseg: instance segmentation that stays right when objects hide each other.

The Python API (:mod:`occseg.api`), imported on first use so that ``import occseg`` stays light::

    model = occseg.load()                       # the shipped person model
    scene = model.segment("photo.jpg", [(10, 20, 200, 400)])
    model = occseg.train("annotations.json", classes=["person"], out="models/person")
    report = occseg.evaluate(gt="gt.json", pred="pred.json")
    occseg.models()                             # the shipped models: name -> folder
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "EvalConfig",
    "Model",
    "PredictConfig",
    "SceneConfig",
    "TrainConfig",
    "__version__",
    "evaluate",
    "load",
    "models",
    "train",
]
#: the names :mod:`occseg.api` offers here
_API = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from occseg.api import EvalConfig, Model, PredictConfig, SceneConfig, TrainConfig, evaluate, load, models, train


def __getattr__(name: str) -> Any:
    if name in _API:
        from occseg import api

        return getattr(api, name)
    raise AttributeError(f"module 'occseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
