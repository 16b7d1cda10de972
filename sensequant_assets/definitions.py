"""The one entry point Dagster loads (``dagster dev``, ``dg``, ``workspace.yaml``)."""

from sensequant_assets.defs import build_defs
from sensequant_assets.settings import get_settings

defs = build_defs(get_settings())
