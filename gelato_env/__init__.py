"""gelato: device-edge speculative decoding of LLMs under energy budgets.

Layout (dependencies point one way, DESIGN.md §1): ``system`` (numpy physics) and ``sd``
(torch/transformers models and the SD engine) -> ``traces`` -> the Gymnasium env -> ``agents``.
"""

__version__ = "0.1.0"
