"""occseg: instance segmentation that stays right when objects hide each other."""

__version__ = "0.1.0"
