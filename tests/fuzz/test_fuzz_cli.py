"""Issue 15, item 3: every subcommand with random argv exits 0, or 2 with one error line, never a traceback.

The flags are read from the parser itself (`xvae.cli.build_parser`), so a flag added on
another branch is fuzzed too: its values come from its type (int, float, choices) or, for
strings, from its name (paths, backends, datasets). Calls run in-process through
`xvae.cli.main` (fast); one test runs the real interpreter. A safe prefix keeps runs that
happen to be valid small (1 epoch, 30 rows, no plots, the backend under test, output in
the sandbox); random flags after it override it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import xvae
from xvae import cli

import conftest
import fuzzkit

#: Runs per subcommand: the full mode's CLI runs come on top of its API calls (a valid `train` run trains).
EXAMPLES = math.ceil(fuzzkit.FULL_CALLS / 30) if fuzzkit.FULL else max(fuzzkit.CI_EXAMPLES, 10)
SETTINGS = settings(max_examples=EXAMPLES, derandomize=not fuzzkit.FULL, database=None, deadline=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
ERROR_LINE = re.compile(r"^xvae( [a-z]+)?: error: ")

INTS = ["1", "2", "0", "-1", "-0", "x", "", " ", "1.5", "1e3", "nan", "99999999999999999999", "0x10", "٣"]
WORK_INTS = ["1", "2", "0", "-1", "x", "", "1.5", "nan"]  # --epochs: no huge counts (they would really run)
FLOATS = ["0.1", "1e-3", "0", "-1", "nan", "inf", "-inf", "1e400", "x", "", "1e30"]
JUNK = ["", "-", "--", "--bogus", "-x", "x", "ü", "\t", "nan", "--epochs=1", "a,b", "@file"]
DATASETS = ["digits", "mnist", "fashion_mnist", "cifar", "DIGITS", ""]
SPLITS = ["train", "test", "all", "nope", ""]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _cli_paths(box: fuzzkit.Sandbox, read_only: bool = False) -> list[str]:
    """Path tokens. Flags get only sandbox paths: --out/--json/--data-dir write (a valid `train
    --out /` would write into "/"). The checkpoint positional is read first, so it may also get
    "/" and /proc paths. No FIFO: a write to one blocks until a reader comes (POSIX)."""
    pool = box.writable + (box.read_only if read_only else [])
    return [os.fsdecode(p) for p in pool if isinstance(p, (str, Path)) and not str(p).endswith("fifo")]


def tokens_for(action: argparse.Action, box: fuzzkit.Sandbox, backend: str) -> list[str]:
    """Values for one flag: from its choices or type, or, for strings, from its name."""
    if action.choices:
        return [str(c) for c in action.choices] + ["nope", ""]
    if action.type is float:
        return FLOATS
    if action.type is not None:  # int, _positive, _ints
        if action.dest == "epochs":
            return WORK_INTS
        return INTS + ["3,2", "3,", "10000000000", "1000000000000"]
    dest = action.dest
    if dest in ("backend", "to", "backends"):
        return [backend, "numpy", "reference", "caffe", "", f"{backend},{backend}", ","]
    if dest == "dataset":
        return DATASETS
    if dest == "split":
        return SPLITS
    return _cli_paths(box) + JUNK


SAFE = {  # keeps valid runs small; random flags come after and override it
    "train": ["--epochs", "1", "--limit", "30", "--hidden", "3", "--no-plots", "--no-progress"],
    "compare": ["--epochs", "1", "--limit", "30", "--hidden", "3"],
    "evaluate": ["--limit", "30"],
}


@st.composite
def argv_for(draw: Any, command: str, sub: argparse.ArgumentParser, box: fuzzkit.Sandbox, backend: str) -> list[str]:
    argv = [command]
    optional = [a for a in sub._actions if a.option_strings and a.dest not in ("help", "debug")]
    positional = [a for a in sub._actions if not a.option_strings]
    for action in positional:
        if draw(st.integers(0, 9)):  # usually given
            argv.append(draw(st.sampled_from(_cli_paths(box, read_only=True) + JUNK)))
    safe = SAFE.get(command, [])
    if "--no-plots" in safe and draw(st.integers(0, 7)) == 0:  # now and then the plots too (seconds)
        safe = [t for t in safe if t != "--no-plots"]
    argv += safe
    if any(a.dest == "out" for a in optional):
        argv += ["--out", str(box.root / {"sample": "samples.png", "convert": "converted.xvae"}.get(command, "out"))]
    for name in ("backend", "to", "backends"):
        flag = f"--{name}"
        if any(flag in a.option_strings for a in optional):
            argv += [flag, backend]
    for _ in range(draw(st.integers(0, 5))):
        action = draw(st.sampled_from(optional)) if optional else None
        if action is None or draw(st.integers(0, 7)) == 0:
            argv.append(draw(st.sampled_from(JUNK)))
            continue
        argv.append(draw(st.sampled_from(action.option_strings)))
        if action.nargs != 0 and draw(st.integers(0, 9)):  # sometimes the value is missing
            argv.append(draw(st.sampled_from(tokens_for(action, box, backend))))
    return argv


@pytest.fixture
def cli_box(fuzz_backend, tmp_path, monkeypatch):
    """The sandbox, with a digits-sized VAE checkpoint (64 inputs) so that sample/evaluate can succeed."""
    if xvae.backends.why_unavailable(fuzz_backend):
        pytest.skip(f"backend {fuzz_backend!r} unavailable: {xvae.backends.why_unavailable(fuzz_backend)}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XVAE_DATA_DIR", str(tmp_path / "data"))
    nowhere = (tmp_path / "no-mirror").as_uri() + "/"
    monkeypatch.setenv("XVAE_MNIST_URL", nowhere)
    monkeypatch.setenv("XVAE_FASHION_MNIST_URL", nowhere)
    if not fuzzkit.FULL:  # `xvae backends` would import every framework: the normal suite stays light
        monkeypatch.setenv("XVAE_DISABLE_PLUGINS", "jax,tf,torch")
        monkeypatch.setattr(xvae.backends, "_registry", None)
    vae = xvae.VAE(xvae.VAESpec(input_dim=64, hidden=(3,), latents=2), backend=fuzz_backend)
    box = fuzzkit.make_sandbox(tmp_path, vae)
    yield box
    fuzzkit.give_back_permissions(tmp_path)


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_random_argv_exits_0_or_2_with_one_line(cli_box, fuzz_backend, command, capsys):
    sub = subcommands()[command]
    escapes: list[fuzzkit.Escape] = []
    calls = 0
    codes: Counter[Any] = Counter()

    @SETTINGS
    @given(argv=argv_for(command, sub, cli_box, fuzz_backend))
    def run(argv):
        nonlocal calls
        calls += 1
        capsys.readouterr()
        outcome: list[Any] = []
        escape = fuzzkit.guarded_call(f"xvae {command}", lambda: outcome.append(cli.main(argv)), [], {})
        err = capsys.readouterr().err
        code = outcome[0] if outcome else None
        codes[code] += 1
        errors = [line for line in err.splitlines() if ERROR_LINE.match(line)]
        if escape is None and code == 0:
            return
        if escape is None and code == 2 and len(errors) == 1 and "Traceback" not in err:
            return
        why = escape.error if escape else f"exit {code}, {len(errors)} error lines"
        message = escape.message if escape else (errors or err.strip().splitlines() or [""])[-1][:200]
        escapes.append(fuzzkit.Escape(f"xvae {command}", why, message, " ".join(map(repr, argv))))

    run()
    print(f"xvae {command} on {fuzz_backend}: exit codes {dict(codes)}")  # how many runs were valid (0)
    conftest.record(f"{fuzz_backend} (cli)", escapes, calls, Counter({f"exit {k}": v for k, v in codes.items()}))
    distinct = {(e.error, e.message): e for e in escapes}
    assert not escapes, (f"{len(escapes)} of {calls} runs of `xvae {command}` did not exit 0 or 2 with one line "
                         f"({len(distinct)} distinct):\n" + "\n".join(map(str, list(distinct.values())[:12])))


def test_the_real_console_entry_point_exits_2_with_one_line(tmp_path):
    """Out of process: the interpreter's own exit code and stderr, no traceback."""
    env = {**os.environ, "XVAE_DISABLE_PLUGINS": "jax,tf,torch"}
    for argv in (["train", "--epochs", "x"], ["sample", "/"], ["convert", str(tmp_path / "none.xvae"), "--to", "numpy"]):
        done = subprocess.run([sys.executable, "-m", "xvae.cli", *argv], capture_output=True, text=True, env=env,
                              timeout=120, check=False, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and ERROR_LINE.match(lines[0]), (argv, done.stderr)
        assert "Traceback" not in done.stderr
