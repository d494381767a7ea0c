"""PNG plots for asset metadata and MLflow (matplotlib, headless)."""

import io
from collections.abc import Callable
from typing import Any


def render_png(draw: Callable[[Any], None], *, figsize: tuple[float, float], dpi: int) -> bytes:
    """Draw on a fresh axes with ``draw(ax)`` and return the figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def png_image(payload: bytes) -> Any:
    """PNG bytes as the PIL image ``mlflow.log_image`` takes."""
    from PIL import Image

    return Image.open(io.BytesIO(payload))
