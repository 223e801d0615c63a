"""Model zoo. Importing this package registers every model family.

Add a family: write ``fak3zer0/models/<family>.py`` with ``@register_model`` builders
and add one import line below.
"""
from fak3zer0.models.registry import (  # noqa: F401
    REGISTRY,
    InputSpec,
    ModelEntry,
    create_model,
    list_models,
    model_entry,
    register_model,
)

# --- families (one line each) ---
from fak3zer0.models import meso  # noqa: F401,E402
from fak3zer0.models import efficientnet  # noqa: F401,E402
from fak3zer0.models import backbones  # noqa: F401,E402
from fak3zer0.models import temporal  # noqa: F401,E402
from fak3zer0.models import c3d  # noqa: F401,E402
from fak3zer0.models import i3d  # noqa: F401,E402
from fak3zer0.models import r2plus1d  # noqa: F401,E402
from fak3zer0.models import clip_temporal  # noqa: F401,E402
from fak3zer0.models import stgcn  # noqa: F401,E402
from fak3zer0.models import ensemble  # noqa: F401,E402
