"""Registers gelato's config schemas whenever Hydra starts (``@hydra.main`` or compose).

Hydra imports every module under ``hydra_plugins`` at start-up; importing this one runs
:func:`gelato_env.conf.schema.register`, so the primary configs' ``- schema_<name>`` defaults
resolve wherever the configs are composed.
"""

from gelato_env.conf.schema import register

register()
