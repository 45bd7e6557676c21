"""Every shell command in the docs runs as written (README.md, docs/*.md, comments in conf/).

The test extracts the commands (fenced ``bash`` blocks, inline code spans that start with
``python``, ``make``, ``pip`` or ``gelato-``, and ``python scripts/...`` in YAML comments) and
checks each one in the default run, cheaply, and runs it for real under ``-m slow``:

- Hydra commands (``scripts/evaluate.py``, ``scripts/train.py``, ``scripts/record_traces.py``,
  the ``gelato-*`` console scripts). Default: the command's arguments composed in-process with
  Hydra's compose API (each value of a ``-m`` sweep), then the scripts' own checks
  (:func:`gelato_env.conf.schema.check_composed`, ``EnvConfig``): every failure of a documented
  command seen so far was of this kind (an override that does not compose). ``slow``: the
  command itself in a subprocess on the shipped default trace, its own arguments first, then
  overrides that only shrink the budget (:data:`EVALUATE_TINY`, :func:`train_tiny`) and send
  outputs to a temporary folder; on 2 busy cores they take 10-80 s each, minutes together.
  Placeholders become real paths: ``runs/<run>`` the run the documented training command
  wrote, ``multirun/<date>/<time>`` the documented multirun's folder, ``/path/my_agent.yaml`` a
  preset file with ``_target_``. ``scripts/record_traces.py`` is never run: recording needs the
  Qwen pair (``[qwen]`` extra, ~1.6 GB) and hours of CPU.
- argparse scripts and ``gelato-aggregate``: ``--help`` by default; ``slow``: sb3_evaluate_policy
  is run by tests/agents/test_sb3_predict.py, rllib_example by tests/scripts/test_rllib_example.py,
  ``gelato-aggregate`` here on the documented multirun.
- ``make <target>``: ``make -n <target>`` (Make's dry run: the target exists and its recipe
  expands); ``make demo``'s recipe command is checked and run like the scripts above. ``make
  test`` and ``make check`` would run this suite inside itself.
- ``pip install``: checked, not run (network, minutes): the extras it names exist in
  pyproject.toml and the constraints file it passes exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: appended to documented evaluate commands: one seed, one episode, no sweeps, no W&B
EVALUATE_TINY = ("seeds=[0]", "n_episodes=1", "sweep.enabled=false", "check_lossless=false",
                 "wandb.mode=disabled", "progress=false")  # fmt: skip
#: appended when the command does not choose agents itself
EVALUATE_AGENTS = "agents=[gelato,dssd]"
#: the console scripts and the scripts they run
CONSOLE = {"gelato-train": "train", "gelato-evaluate": "evaluate", "gelato-record": "record"}
SCRIPT_JOB = {"scripts/train.py": "train", "scripts/evaluate.py": "evaluate",
              "scripts/record_traces.py": "record"}  # fmt: skip
CODE_PREFIXES = ("python ", "make ", "pip ", "gelato-")


@dataclass(frozen=True)
class Command:
    """A documented shell command and where it is written."""

    text: str
    source: str  # file:line

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text, comments=True)


def _fenced(path: Path) -> Iterator[Command]:
    lines = path.read_text().splitlines()
    in_shell, pending, start = False, "", 0
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_shell = not in_shell and line[3:].strip() in ("bash", "sh", "shell", "console")
            continue
        if not in_shell or not line.strip():
            continue
        start = start or i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if shlex.split(text, comments=True):
            yield Command(text, f"{path.relative_to(ROOT)}:{start}")
        start = 0


def _inline(path: Path) -> Iterator[Command]:
    in_code = False
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        for span in [] if in_code else re.findall(r"`([^`]+)`", line):
            if (span.startswith(CODE_PREFIXES) and " " in span) or span in CONSOLE:
                yield Command(span, f"{path.relative_to(ROOT)}:{i}")


def _conf_comments() -> Iterator[Command]:
    for path in sorted((ROOT / "gelato_env" / "conf").rglob("*.yaml")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            comment = line.partition("#")[2]
            spans = [s for s in re.findall(r"`([^`]+)`", comment) if s.startswith("python ")]
            found = re.search(r"python scripts/\S+\.py(?: [^\s:`]+)*", comment)
            for text in spans or ([found.group(0)] if found else []):
                yield Command(text, f"{path.relative_to(ROOT)}:{i}")


def documented_commands() -> list[Command]:
    """Every documented command, first place written (duplicates dropped)."""
    found = [*_fenced(ROOT / "README.md"), *_inline(ROOT / "README.md")]
    for doc in sorted((ROOT / "docs").glob("*.md")):
        found += [*_fenced(doc), *_inline(doc)]
    found += list(_conf_comments())
    unique: dict[str, Command] = {}
    for command in found:
        unique.setdefault(" ".join(command.argv), command)
    return list(unique.values())


COMMANDS = documented_commands()


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1"}  # fmt: skip


def _run(argv: list[str], cwd: Path, timeout: int = 600) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=_env(), cwd=cwd,
                          timeout=timeout, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{shlex.join(argv)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def job_of(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(the Hydra job, the program argv, the arguments) of a Python or console-script command."""
    if argv[0] in CONSOLE:
        return CONSOLE[argv[0]], [str(BIN / argv[0])], argv[1:]
    if argv[0] == "python" and argv[1] in SCRIPT_JOB:
        return SCRIPT_JOB[argv[1]], [sys.executable, str(ROOT / argv[1])], argv[2:]
    if argv[0] == "python" and argv[1] == "-m":
        return None, [sys.executable, "-m", argv[2]], argv[3:]
    return None, [sys.executable, str(ROOT / argv[1])], argv[2:]


def train_tiny(args: list[str]) -> list[str]:
    """Overrides that shrink a documented training command to a few seconds (its algorithm's)."""
    algo = next((a.split("=", 1)[1] for a in args if a.startswith("algo=")), "ppo")
    per_algo = {
        "ppo": ["algo.kwargs.n_steps=32", "algo.kwargs.batch_size=32", "algo.kwargs.n_epochs=1"],
        "a2c": ["algo.kwargs.n_steps=8"],
        "dqn": ["algo.kwargs.learning_starts=8", "algo.kwargs.buffer_size=512"],
    }[algo]
    return ["train.total_timesteps=64", "train.n_envs=2", "train.eval_freq=0",
            "train.checkpoint_freq=64", "env.horizon=16", "compare.agents=[gelato]",
            "compare.n_episodes=1", "compare.clairvoyant=false", "wandb.mode=disabled",
            "progress_bar=false", *per_algo]  # fmt: skip


class Placeholders:
    """Real paths for the docs' placeholders, made on first use (by documented commands)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: dict[str, str] = {}

    def substitute(self, args: list[str]) -> list[str]:
        out = []
        for arg in args:
            if "runs/<run>" in arg:
                arg = arg.replace("runs/<run>", self._get("run"))
            if "/path/my_agent.yaml" in arg:
                arg = arg.replace("/path/my_agent.yaml", self._get("preset"))
            if "multirun/<date>/<time>" in arg:
                arg = arg.replace("multirun/<date>/<time>", self._get("multirun"))
            out.append(arg)
        return out

    def _get(self, name: str) -> str:
        if name not in self.made:
            self.made[name] = str(getattr(self, f"_make_{name}")())
        return self.made[name]

    def _documented(self, pattern: str) -> Command:
        return next(c for c in COMMANDS if re.search(pattern, c.text))

    def _make_run(self) -> Path:  # the README's training command, shrunk
        run_dir = self.tmp / "run"
        run_hydra(self._documented(r"scripts/train\.py \+experiment="), self, run_dir)
        return run_dir

    def _make_multirun(self) -> Path:  # the README's multirun command, shrunk
        sweep_dir = self.tmp / "multirun"
        run_hydra(self._documented(r"evaluate\.py -m "), self, sweep_dir)
        return sweep_dir

    def _make_preset(self) -> Path:
        path = self.tmp / "my_agent.yaml"
        path.write_text("_target_: agents.baselines.StaticSD\nlabel: half\nparams: {gamma: 2}\n")
        return path


def run_hydra(command: Command, places: Placeholders, out: Path) -> str:
    """Run a documented Hydra command with its own arguments, then the shrinking overrides."""
    job, program, args = job_of(command.argv)
    args = places.substitute(args)
    multirun = "-m" in args or "--multirun" in args
    tiny = [f"hydra.{'sweep' if multirun else 'run'}.dir={out}"]
    if job == "evaluate":
        has_agents = any(a.startswith("agents=") for a in args)
        tiny += [*EVALUATE_TINY, *([] if has_agents else [EVALUATE_AGENTS])]
    elif job == "train":
        tiny += train_tiny(args)
    return _run([*program, *args, *tiny], cwd=places.tmp)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Placeholders:
    return Placeholders(tmp_path_factory.mktemp("docs"))


def test_the_docs_hold_the_commands_this_test_expects() -> None:
    texts = {c.text.split("  #")[0].strip() for c in COMMANDS}
    assert "make demo" in texts
    assert "python scripts/train.py +experiment=train_ppo_paper seed=0" in texts
    assert any("hydra/launcher=joblib" in t for t in texts)
    assert any(t.startswith("gelato-aggregate") for t in texts)
    assert any(c.source.startswith("gelato_env/conf/system/") for c in COMMANDS)


def _is_hydra(command: Command) -> bool:
    return job_of(command.argv)[0] is not None if command.argv[0] in ("python", *CONSOLE) else False


HYDRA = [c for c in COMMANDS if _is_hydra(c)]
OTHER = [c for c in COMMANDS if not _is_hydra(c)]
#: the documented Hydra commands run for real (record_traces.py needs the Qwen pair and hours)
RUNNABLE = [c for c in HYDRA if job_of(c.argv)[0] != "record"]
#: placeholders in compose-only checks: any path will do, nothing reads it
DUMMY = {"runs/<run>": "runs/dummy", "/path/my_agent.yaml": "/tmp/my_agent.yaml"}


def composed_variants(args: list[str]) -> list[list[str]]:
    """The overrides of a command as compose takes them: one list per point of a ``-m`` sweep.

    >>> composed_variants(["-m", "hydra/launcher=joblib", "env.v=1,2", "seeds=[0]"])
    [['env.v=1', 'seeds=[0]'], ['env.v=2', 'seeds=[0]']]
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain = [a for a in args if a not in ("-m", "--multirun")]
    variants: list[list[str]] = [[]]
    for override in OverridesParser.create().parse_overrides(plain):
        if override.is_hydra_override():  # launcher choice: composed by hydra, not the job
            continue
        key = override.get_key_element()
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else None
        lines = [f"{key}={v}" for v in values] if values else [override.input_line]
        variants = [[*v, line] for v in variants for line in lines]
    return variants


@pytest.mark.parametrize("command", HYDRA, ids=[c.source for c in HYDRA])
def test_documented_hydra_command_composes(command: Command) -> None:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from gelato_env.conf import schema
    from gelato_env.config import EnvConfig

    job, _, args = job_of(command.argv)
    args = [_replace(arg, DUMMY) for arg in args]
    primary = {"train": "train", "evaluate": "evaluate", "record": "record_traces"}[str(job)]
    with initialize_config_module("gelato_env.conf", version_base="1.3"):
        for overrides in composed_variants(args):
            cfg = compose(primary, overrides=overrides)
            schema.check_composed(cfg)
            if "env" in cfg:
                EnvConfig.from_dict(OmegaConf.to_container(cfg.env, resolve=True))  # type: ignore[arg-type]


def _replace(text: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        text = text.replace(old, new)
    return text


@pytest.mark.slow
@pytest.mark.parametrize("command", RUNNABLE, ids=[c.source for c in RUNNABLE])
def test_documented_hydra_command_runs(command: Command, places: Placeholders) -> None:
    if re.search(r"evaluate\.py -m ", command.text):  # the multirun the aggregation reads
        out = Path(places.substitute(["multirun/<date>/<time>"])[0])
        assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["0", "1", "2"]
    elif re.search(r"scripts/train\.py \+experiment=", command.text):  # the learned agent's run
        assert (Path(places.substitute(["runs/<run>"])[0]) / "model.zip").is_file()
    else:
        out = places.tmp / re.sub(r"\W+", "_", command.source)
        text = run_hydra(command, places, out)
        assert (out / "results.csv").is_file(), text[-2000:]


@pytest.mark.parametrize("command", OTHER, ids=[c.source for c in OTHER])
def test_documented_other_command(command: Command, places: Placeholders) -> None:
    argv = command.argv
    if argv[0] == "make":
        dry = _run(["make", "-n", argv[1]], cwd=ROOT, timeout=60)
        if argv[1] == "demo":  # its recipe is a documented command (README: make demo = ...)
            assert re.search(r"python scripts/evaluate\.py\s*$", dry, re.MULTILINE), dry
    elif argv[0] == "pip":
        _check_pip(argv)
    else:  # argparse programs: the aggregation, the SB3 and RLlib examples
        program = [str(BIN / argv[0])] if argv[0].startswith("gelato-") else job_of(argv)[1]
        assert "usage:" in _run([*program, "--help"], cwd=places.tmp)


@pytest.mark.slow
def test_documented_aggregation_runs(places: Placeholders) -> None:
    command = next(c for c in OTHER if c.argv[0] == "gelato-aggregate")
    out = _run([str(BIN / "gelato-aggregate"), *places.substitute(command.argv[1:])],
               cwd=places.tmp)  # fmt: skip
    assert "| env.budget_value | agent |" in out


def _check_pip(argv: list[str]) -> None:
    assert argv[:2] == ["pip", "install"], argv
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for arg in argv[2:]:
        extras = re.fullmatch(r"\.(?:\[([\w,]+)\])?", arg)
        if extras and extras.group(1):
            assert set(extras.group(1).split(",")) <= set(project["optional-dependencies"])
    if "-c" in argv:
        assert (ROOT / argv[argv.index("-c") + 1]).is_file()
