"""gelato: device-edge speculative decoding of LLMs under energy budgets.

Layout (dependencies point one way, docs/design.md §1): ``system`` (numpy physics) and ``sd``
(torch/transformers models and the SD engine) -> ``traces`` -> the Gymnasium env -> ``agents``.
Importing the package registers the Gymnasium ids (:mod:`gelato_env.registration`).
"""

import gelato_env.registration  # noqa: F401  (registers the Gymnasium ids)
from gelato_env._version import __version__

__all__ = ["__version__"]
