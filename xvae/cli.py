"""The `xvae` command line: thin argument parsing over library functions.

Exit codes: 0 success; 2 the command cannot run as given: a usage error, or an xvae error
or OS error (bad value, missing or corrupt file, unknown backend); 1 an unexpected error (a
bug: please report it). Every error is one line on stderr; --debug adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from xvae._errors import XVAEError

__all__ = ["build_parser", "main"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 500 or 256,128; got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _steps_per_call(text: str) -> int | str:
    """--steps-per-call: a positive integer, or "epoch" (a whole epoch per compiled call)."""
    if text.strip() == "epoch":
        return "epoch"
    try:
        return _positive(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f'expected a positive integer or "epoch"; got {text!r}') from None


#: Defaults of the model options. They are None on the parser, so `train --resume` can tell
#: which ones were given (and refuse those the checkpoint fixes) from those left alone.
MODEL_DEFAULTS: dict[str, Any] = {"model": "vae", "hidden": (256,), "latents": 2, "activation": "relu",
                                  "optimizer": "adam", "momentum": 0.0, "seed": 0}
#: What the bundled digits need: no download, so it is the default when nothing else says.
DEFAULT_DATASET = "digits"


def _add_data(p: argparse.ArgumentParser, split: str = "train", dataset_default: str = "digits") -> None:
    p.add_argument("--dataset", default=None, help=f"digits (bundled), mnist or fashion_mnist; default {dataset_default}")
    p.add_argument("--split", default=None, help=f"dataset split: train, test (digits also all); default {split}")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (default: $XVAE_DATA_DIR or ~/.cache/xvae)")
    p.add_argument("--limit", type=_positive, default=None, help="use only the first N examples")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("vae", "cvae", "classifier"), default=None,
                   help="what to train: vae (default), cvae (a VAE conditioned on the labels) or classifier")
    p.add_argument("--hidden", type=_ints, default=None, help="hidden widths, e.g. 500 or 256,128 (default 256)")
    p.add_argument("--latents", type=int, default=None,
                   help="VAE latent dimension (default 2, which gives latent-space plots)")
    p.add_argument("--activation", default=None, help="hidden-layer activation: relu (default), tanh, elu, gelu, ...")
    p.add_argument("--epochs", type=int, default=50, help="epochs to train (default 50); with --resume, the total")
    p.add_argument("--batch-size", type=int, default=64, help="examples per optimizer step (default 64)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None, help="adam (default) or sgd")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: adam 1e-3, sgd 1e-2); with --resume it replaces the checkpoint's")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum in [0, 1) (default 0)")
    p.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none",
                   help="binarize the inputs: none (default), static (x > 0.5) or dynamic (drawn each epoch)")
    p.add_argument("--seed", type=int, default=None, help="seeds the weights and every draw (default 0)")
    p.add_argument("--steps-per-call", type=_steps_per_call, default=1,
                   help='optimizer steps per compiled call, or "epoch" (default 1; same numbers, less overhead)')


#: Exit status of a command that cannot run as given (argparse's usage-error code).
USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage itself is in --help)."""

    def error(self, message: str) -> NoReturn:
        first = message.strip().splitlines()[0] if message.strip() else "invalid arguments"
        self.exit(USAGE, f"{self.prog}: error: {first} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from xvae import __version__

    parser = _Parser(
        prog="xvae", description="Train the same VAE or classifier in JAX, TensorFlow or PyTorch.",
        epilog="Exit codes: 0 success, 2 the command cannot run as given (bad usage or an xvae error: one "
               "line; --debug for the traceback), 1 an unexpected error.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"xvae {__version__}")
    # --debug after the command too (xvae train --debug); SUPPRESS keeps the top-level value otherwise
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[common])

    add("backends", "list backends: installed?, version, device")

    train = add("train", "train a model and write history, checkpoint and plots")
    _add_data(train, dataset_default="digits; with --resume, the checkpoint's")
    _add_model(train)
    train.add_argument("--backend", default=None, help="jax, tf, torch or numpy (default: first available)")
    train.add_argument("--out", default="runs/xvae", help="output folder (default runs/xvae)")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT",
                       help="continue from a checkpoint (or a folder of epoch-N.xvae checkpoints: the latest); "
                            "--epochs is the total; the model, optimizer and seed come from the checkpoint "
                            "(giving other values is an error), --lr replaces its learning rate")
    train.add_argument("--checkpoint-every", type=int, default=0, help="also save OUT/checkpoints/epoch-N.xvae every N epochs")
    train.add_argument("--keep", type=_positive, default=3, help="checkpoints to keep with --checkpoint-every (default 3)")
    train.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    train.add_argument("--precision", choices=("highest", "fast"), default=None,
                       help="highest (full float32, default) or fast (TF32/bf16 where the GPU has it)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                       help="0 silent, 1 a progress bar per epoch, 2 one line per epoch "
                            "(default: 1 in a terminal, 2 when the output goes to a file or pipe)")
    train.add_argument("--no-progress", action="store_true", help="the same as --verbose 0")

    comp = add("compare", "train the same spec in every backend and compare")
    _add_data(comp)
    _add_model(comp)
    comp.add_argument("--backends", default=None, help="comma-separated (default: every installed framework)")
    comp.add_argument("--json", default=None, help="write the table as JSON")
    comp.add_argument("--markdown", default=None, help="write the table as Markdown")
    comp.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                      help="each backend's training report: 0 silent (default), 1 a progress bar, 2 one line per epoch")

    sample = add("sample", "decode samples from a VAE checkpoint into a PNG grid")
    sample.add_argument("checkpoint", help="a VAE checkpoint, or a folder of them (the latest)")
    sample.add_argument("-n", type=_positive, default=64,
                        help="how many samples (default 64); a conditional VAE: per class, one row per class")
    sample.add_argument("--seed", type=int, default=0, help="seeds z (and the binary draws); default 0")
    sample.add_argument("--binary", action="store_true", help="draw 0/1 pixels instead of showing the Bernoulli means")
    sample.add_argument("--backend", default=None, help="backend to decode with (default: the checkpoint's)")
    sample.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    sample.add_argument("--overwrite", action="store_true", help="replace --out if it exists (refused otherwise)")

    conv = add("convert", "load a checkpoint in another backend and save it")
    conv.add_argument("checkpoint", help="the checkpoint to convert, or a folder of them (the latest)")
    conv.add_argument("--to", required=True, help="target backend")
    conv.add_argument("--out", default=None, help="output checkpoint (default: overwrite in place)")

    desc = add("describe", "print a spec's layer table: output shapes and parameter counts")
    desc.add_argument("spec", help="a spec JSON file (spec.to_json()) or a checkpoint directory")

    ev = add("evaluate", "evaluate a checkpoint on a dataset split")
    ev.add_argument("checkpoint", help="the checkpoint to evaluate, or a folder of them (the latest)")
    _add_data(ev, split="test", dataset_default="the one the checkpoint was trained on, else digits")
    ev.add_argument("--backend", default=None, help="backend to evaluate with (default: the checkpoint's)")
    ev.add_argument("--seed", type=int, default=0, help="seeds the VAE's z noise (default 0)")
    ev.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none",
                    help="binarize the inputs as in training: none (default), static or dynamic")
    return parser


def _data(args: argparse.Namespace, split: str = "train", recorded: dict[str, Any] | None = None) -> Any:
    """The dataset split the flags name; unnamed parts come from `recorded` (a checkpoint's), else the defaults."""
    from xvae import datasets

    recorded = recorded or {}
    name = args.dataset or recorded.get("name") or DEFAULT_DATASET
    same = name == recorded.get("name")
    split = args.split or (recorded.get("split") if same and split == "train" else None) or split
    data = datasets.load(name, split=split, data_dir=args.data_dir)
    if args.limit:
        data = data.subset(slice(0, args.limit))
    return data


def _spec(args: argparse.Namespace, data: Any) -> Any:
    import xvae

    d = data.x.shape[1]
    if args.model in ("vae", "cvae"):  # a conditional VAE: one condition per class of the labels
        conditions = int(data.y.max()) + 1 if args.model == "cvae" else 0
        return xvae.VAESpec(input_dim=d, hidden=args.hidden, latents=args.latents, activation=args.activation,
                            conditions=conditions)
    return xvae.ClassifierSpec(input_dim=d, hidden=args.hidden, outputs=int(data.y.max()) + 1, activation=args.activation)


def _optimizer(args: argparse.Namespace) -> Any:
    from xvae import optim

    if args.optimizer == "sgd":
        return optim.SGD(args.lr if args.lr is not None else 1e-2, momentum=args.momentum)
    return optim.Adam(args.lr if args.lr is not None else 1e-3)


def _binarize(value: str) -> str | None:
    return None if value == "none" else value


def cmd_backends(args: argparse.Namespace) -> int:
    from xvae import backends

    rows = [("backend", "status", "version", "device")]
    for name in backends.known():
        reason = backends.why_unavailable(name)
        if reason:
            rows.append((name, "unavailable", "-", reason))
            continue
        info = backends.get(name).info()
        rows.append((name, "ok", info["version"], info["device"]))
    for name, cause in backends.broken().items():
        rows.append((name, "broken plugin", "-", cause))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
    return 0


def _with_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """The model options a new model is built with: the flags given, MODEL_DEFAULTS for the rest."""
    for name, default in MODEL_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def _resumed_values(model: Any) -> dict[str, Any]:
    """The checkpoint's value of each model option a --resume run cannot change."""
    spec = model.spec
    optimizer = model.optimizer
    return {"model": "cvae" if model.kind == "vae" and spec.conditions else model.kind,
            "hidden": spec.encoder.hidden if model.kind == "vae" else spec.hidden,
            "latents": spec.latents if model.kind == "vae" else None,
            "activation": spec.encoder.activation if model.kind == "vae" else spec.activation,
            "optimizer": optimizer.kind if optimizer is not None else None,
            "momentum": getattr(optimizer, "momentum", None)}


def _check_resume_flags(args: argparse.Namespace, model: Any) -> Any:
    """Refuse model options that differ from the checkpoint's; returns the optimizer to continue with.

    --seed is always refused: a resumed run continues the checkpoint's keyed draws. --lr
    replaces the checkpoint's learning rate, and the run says so.
    """
    import dataclasses

    from xvae._errors import ConfigError

    kept = _resumed_values(model)
    clashes = [f"--{name} {_flag_text(getattr(args, name))} (the checkpoint has {_flag_text(kept[name])})"
               for name in kept if getattr(args, name) is not None and getattr(args, name) != kept[name]]
    if args.seed is not None:
        clashes.append(f"--seed {args.seed} (a resumed run continues the checkpoint's keyed random draws, seed {model.seed})")
    if clashes:
        raise ConfigError(f"--resume continues the checkpoint's model; these flags would change it: {'; '.join(clashes)}. "
                          "Drop them, or train a new model without --resume.")
    if args.lr is None or model.optimizer is None or args.lr == model.optimizer.lr:
        return None
    print(f"xvae train: --lr {args.lr:g} replaces the checkpoint's learning rate {model.optimizer.lr:g}")
    return dataclasses.replace(model.optimizer, lr=args.lr)


def _flag_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _verbose(args: argparse.Namespace) -> int | str:
    if args.no_progress and args.verbose not in (None, 0):
        from xvae._errors import ConfigError

        raise ConfigError(f"--no-progress contradicts --verbose {args.verbose}; pass one of them.")
    return 0 if args.no_progress else ("auto" if args.verbose is None else args.verbose)


def cmd_train(args: argparse.Namespace) -> int:
    import xvae
    from xvae import plots

    if args.resume:
        model = xvae.load(args.resume, backend=args.backend, precision=args.precision)
        optimizer = _check_resume_flags(args, model)
        if args.epochs == model.epoch:
            print(f"xvae train: the checkpoint has reached epoch {model.epoch} and --epochs is the total: "
                  f"nothing to do (pass --epochs {model.epoch + 1} or more to train further).")
            return 0
        data = _data(args, recorded=model.metadata.get("dataset"))
    else:
        args = _with_defaults(args)
        data = _data(args)
        spec = _spec(args, data)
        cls = xvae.Classifier if args.model == "classifier" else xvae.VAE
        model = cls(spec, backend=args.backend, seed=args.seed, precision=args.precision or "highest")
        optimizer = _optimizer(args)
    model.metadata["dataset"] = {"name": data.name, "split": data.split, "image_shape": list(data.image_shape)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"xvae train: {model.kind} {model.spec.to_json()} on {data.name}/{data.split} "
          f"({len(data.x)} examples) with backend {model.backend!r}")
    val = _validation(args, data)
    fit_args: dict[str, Any] = {
        "epochs": args.epochs, "batch_size": args.batch_size,
        "optimizer": optimizer, "verbose": _verbose(args),
        "steps_per_call": args.steps_per_call, "resume": bool(args.resume),
        "checkpoint_dir": (out / "checkpoints") if args.checkpoint_every else None,
        "checkpoint_every": max(args.checkpoint_every, 1), "keep": args.keep}
    first_epoch = model.epoch
    if model.kind == "vae":
        labels = model.spec.conditions > 0  # a conditional VAE trains and validates on (x, y)
        hist = model.fit(data.x, data.y if labels else None, binarize=_binarize(args.binarize),
                         validation_data=None if val is None else ((val.x, val.y) if labels else val.x), **fit_args)
    else:
        hist = model.fit(data.x, data.y, validation_data=None if val is None else (val.x, val.y),
                         **fit_args)
    hist = _with_earlier_epochs(out / "history.json", hist, first_epoch) if args.resume else hist
    hist.to_json(out / "history.json")
    model.save(out / "model.xvae")
    written = [out / "history.json", out / "model.xvae"]
    if not args.no_plots:
        shown = data if val is None else val
        written += [Path(p) for p in plots.save_all(model, hist, shown.x, out, labels=shown.y,
                                                     image_shape=data.image_shape)]
    last = {k: round(v[-1], 4) for k, v in hist.history.items()}
    print(f"final epoch {model.epoch}: {last}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _with_earlier_epochs(path: Path, hist: Any, first_epoch: int) -> Any:
    """A resumed run's History preceded by the rows of the run it continues (if `path` has them)."""
    from xvae import History

    if not path.is_file():
        return hist
    try:
        earlier = History.from_json(path)
    except XVAEError:
        return hist
    keep = [i for i, e in enumerate(earlier.epoch) if e <= first_epoch]
    if set(earlier.history) != set(hist.history) or not keep:
        return hist
    merged = History({k: [v[i] for i in keep] for k, v in earlier.history.items()},
                     [earlier.epoch[i] for i in keep], dict(hist.params))
    merged.extend(hist)
    return merged


def _validation(args: argparse.Namespace, data: Any) -> Any:
    """Validation data shown per epoch: digits' test split when training on its train split, else none."""
    from xvae import datasets

    if data.name == "digits" and data.split == "train":
        return datasets.load("digits", split="test")
    return None


def cmd_compare(args: argparse.Namespace) -> int:
    from xvae.compare import compare

    args = _with_defaults(args)
    data = _data(args)
    spec = _spec(args, data)
    names = args.backends.split(",") if args.backends else None
    val = _validation(args, data)
    test = data if val is None else val
    result = compare(spec, data.x, None if args.model == "vae" else data.y, x_test=test.x, y_test=test.y,
                     backends=names, epochs=args.epochs, batch_size=args.batch_size, optimizer=_optimizer(args),
                     seed=args.seed, binarize=_binarize(args.binarize), steps_per_call=args.steps_per_call,
                     verbose=args.verbose)
    text = result.to_markdown()
    print(text)
    if args.json:
        Path(args.json).write_text(result.to_json())
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import xvae
    from xvae import plots

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise xvae.ConfigError(f"{out} exists; pass --overwrite to replace it, or --out another.png.")
    model = xvae.load(args.checkpoint, backend=args.backend)
    if model.kind != "vae":
        raise xvae.ConfigError(f"{args.checkpoint} holds a {model.kind}; sampling needs a VAE checkpoint.")
    shape = model.metadata.get("dataset", {}).get("image_shape")
    if model.spec.conditions:  # a conditional VAE: one row of n samples per class
        plots.class_samples(model, out, per_class=args.n, seed=args.seed, binary=args.binary,
                            image_shape=tuple(shape) if shape else None)
    else:
        plots.image_grid(model.sample(args.n, seed=args.seed, binary=args.binary), out, title="samples",
                         image_shape=tuple(shape) if shape else None)
    print(f"wrote {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import xvae

    model = xvae.load(args.checkpoint, backend=args.to)
    out = args.out or args.checkpoint
    model.save(out)
    print(f"wrote {out} (backend {model.backend})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import xvae

    model = xvae.load(args.checkpoint, backend=args.backend)
    data = _data(args, split="test", recorded={"name": model.metadata.get("dataset", {}).get("name")})
    if model.kind == "vae":
        result = model.evaluate(data.x, data.y if model.spec.conditions else None, seed=args.seed,
                                binarize=_binarize(args.binarize))
    else:
        result = model.evaluate(data.x, data.y)
    print(json.dumps({"checkpoint": str(args.checkpoint), "backend": model.backend, "dataset": data.name,
                      "split": data.split, **result}))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """Shapes are inferred when the spec is built: no framework is imported."""
    from pathlib import Path

    import xvae

    path = Path(args.spec)
    if path.is_dir():
        text = json.loads((path / "xvae.json").read_text())
        spec = xvae.spec_from_dict(text.get("spec") if isinstance(text, dict) else text)
    else:
        spec = xvae.spec_from_json(path.read_text())
    if not hasattr(spec, "describe"):
        raise xvae.SpecError(f"{args.spec} holds a {spec.kind} spec; describe takes a VAE or classifier spec.")
    print(spec.describe())
    return 0


#: Arguments that name files or folders: checked once, here, before any command runs.
PATH_ARGS = ("checkpoint", "spec", "out", "resume", "data_dir", "json", "markdown")


def _bad_path(args: argparse.Namespace) -> str | None:
    """Why a path argument cannot name a file (empty, a NUL byte), or None."""
    from xvae._validate import path_text

    for dest in PATH_ARGS:
        value = getattr(args, dest, None)
        if not isinstance(value, str):
            continue
        flag = dest if dest in ("checkpoint", "spec") else "--" + dest.replace("_", "-")
        if value and not value.strip():  # spaces only: a typo on a command line, not a name
            return f"argument {flag} must be a path; {value!r} is blank. Pass a file or folder path."
        try:
            path_text(value, f"argument {flag}", XVAEError, "Pass a file or folder path.")
        except XVAEError as err:
            return str(err)
    return None


COMMANDS = {"backends": cmd_backends, "describe": cmd_describe, "train": cmd_train, "compare": cmd_compare, "sample": cmd_sample,
            "convert": cmd_convert, "evaluate": cmd_evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `xvae` console script; returns the exit code (0, 2 or 1).

    Errors print one line on stderr (``xvae CMD: error: Type: message``); ``--debug``
    adds the traceback. Usage errors and xvae errors exit 2; an unexpected error exits 1.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version (0) and usage errors (2)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    bad = _bad_path(args)
    if bad:
        print(f"xvae {args.command}: error: {bad} (see xvae {args.command} --help)", file=sys.stderr)
        return USAGE
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("xvae: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - one line for every error; --debug shows the traceback
        if args.debug:
            traceback.print_exc()
        known = isinstance(err, (XVAEError, OSError))
        lines = str(err).strip().splitlines() or [""]
        hint = "" if known or args.debug else " (an unexpected error: run with --debug for the traceback)"
        print(f"xvae {args.command}: error: {type(err).__name__}: {lines[0]}{hint}", file=sys.stderr)
        return USAGE if known else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
