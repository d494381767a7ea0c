"""The local-files market-data source: the user's own bars, served as Polygon's REST API.

``SMALLCAPS_LOCAL_BARS=<folder>`` selects it (``defs/resources.py``); the folder's layout and the
formats it reads are described in ``bars.py`` and ``formats.py`` and in ``docs/local-files.md``.
"""

from smallcaps_assets.sources.local.bars import LocalBars
from smallcaps_assets.sources.local.errors import LocalBarsError
from smallcaps_assets.sources.local.formats import DEFAULT_TIMEZONE
from smallcaps_assets.sources.local.transport import LocalPolygonTransport

__all__ = ["DEFAULT_TIMEZONE", "LocalBars", "LocalBarsError", "LocalPolygonTransport"]
