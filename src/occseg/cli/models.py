"""``occseg models``: the models that ship with occseg (``occseg.models()``)."""

from __future__ import annotations

import click


@click.command("models")
def cmd() -> None:
    """List the shipped models: name, folder, classes, backbone and tensor file size. `segment` and `predict` use
    the person model when no --model is given."""
    from occseg.api import DEFAULT_MODEL, models
    from occseg.io import read_json

    shipped = models()
    if not shipped:
        click.echo("no model ships with this installation")
        return
    for name, folder in shipped.items():
        settings = read_json(folder / "model.json", what="model settings")
        size = (folder / "model.safetensors").stat().st_size
        default = " (default)" if name == DEFAULT_MODEL else ""
        click.echo(
            f"{name}{default}: {folder}; classes {', '.join(settings.get('classes', []))}; "
            f"backbone {settings.get('backbone')}; {settings.get('num_concepts')} concepts; "
            f"{size / 2**20:.2f} MiB"
        )
