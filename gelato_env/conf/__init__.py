"""The Hydra configs of gelato's scripts, shipped with the package (``pkg://gelato_env.conf``).

``train.yaml``, ``evaluate.yaml`` and ``record_traces.yaml`` are the scripts' primary configs;
the groups ``env``, ``system``, ``algo``, ``reward``, ``agent``, ``prompts`` and ``experiment``
hold their values. A checkout also reaches this folder as ``conf/`` (a link at the repository
root), the path the README and the config comments use.
"""
