"""Model backends: `get_model("provider/name")` returns a Model (see devloop.models.base).

The SDK-backed modules load only when a provider is used, so importing this package stays cheap.
"""

from devloop.models.base import Model, ModelError
from devloop.models.providers import PROVIDERS, get_model

__all__ = ["PROVIDERS", "Model", "ModelError", "get_model"]
