"""The `xvae` command line: thin argument parsing over library functions.

Exit codes: 0 success, 1 an xvae error (one line on stderr; --debug shows the traceback),
2 a usage error (argparse's).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _add_data(p: argparse.ArgumentParser, split: str = "train") -> None:
    p.add_argument("--dataset", default="digits", help="digits (bundled, default), mnist or fashion_mnist")
    p.add_argument("--split", default=split, help=f"dataset split: train, test (digits also all); default {split}")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (default: $XVAE_DATA_DIR or ~/.cache/xvae)")
    p.add_argument("--limit", type=_positive, default=None, help="use only the first N examples")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("vae", "classifier"), default="vae")
    p.add_argument("--hidden", type=_ints, default=(256,), help="hidden widths, e.g. 500 or 256,128")
    p.add_argument("--latents", type=int, default=2, help="VAE latent dimension (2 gives latent-space plots)")
    p.add_argument("--activation", default="relu")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (adam 1e-3, sgd 1e-2)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-call", type=int, default=1, help="optimizer steps per compiled call")


def build_parser() -> argparse.ArgumentParser:
    from xvae import __version__

    parser = argparse.ArgumentParser(
        prog="xvae", description="Train the same VAE or classifier in JAX, TensorFlow or PyTorch.",
        epilog="Exit codes: 0 success, 1 error (one line; --debug for the traceback), 2 bad usage.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"xvae {__version__}")
    # --debug after the command too (xvae train --debug); SUPPRESS keeps the top-level value otherwise
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[common])

    add("backends", "list backends: installed?, version, device")

    train = add("train", "train a model and write history, checkpoint and plots")
    _add_data(train)
    _add_model(train)
    train.add_argument("--backend", default=None, help="jax, tf, torch or numpy (default: first available)")
    train.add_argument("--out", default="runs/xvae", help="output folder (default runs/xvae)")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT",
                       help="continue from a checkpoint (or a folder of epoch-N.xvae checkpoints: the latest); "
                            "--epochs is the total, model options come from the checkpoint")
    train.add_argument("--checkpoint-every", type=int, default=0, help="also save OUT/checkpoints/epoch-N.xvae every N epochs")
    train.add_argument("--keep", type=_positive, default=3, help="checkpoints to keep with --checkpoint-every (default 3)")
    train.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    train.add_argument("--precision", choices=("highest", "fast"), default=None,
                       help="highest (full float32, default) or fast (TF32/bf16 where the GPU has it)")
    train.add_argument("--no-progress", action="store_true")

    comp = add("compare", "train the same spec in every backend and compare")
    _add_data(comp)
    _add_model(comp)
    comp.add_argument("--backends", default=None, help="comma-separated (default: every installed framework)")
    comp.add_argument("--json", default=None, help="write the table as JSON")
    comp.add_argument("--markdown", default=None, help="write the table as Markdown")

    sample = add("sample", "decode samples from a VAE checkpoint into a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("-n", type=_positive, default=64, help="how many samples (default 64)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--binary", action="store_true")
    sample.add_argument("--backend", default=None)
    sample.add_argument("--out", default="samples.png")

    conv = add("convert", "load a checkpoint in another backend and save it")
    conv.add_argument("checkpoint")
    conv.add_argument("--to", required=True, help="target backend")
    conv.add_argument("--out", default=None, help="output checkpoint (default: overwrite in place)")

    ev = add("evaluate", "evaluate a checkpoint on a dataset split")
    ev.add_argument("checkpoint")
    _add_data(ev, split="test")
    ev.add_argument("--backend", default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none")
    return parser


def _data(args: argparse.Namespace) -> Any:
    from xvae import datasets

    data = datasets.load(args.dataset, split=args.split, data_dir=args.data_dir)
    if args.limit:
        data = data.subset(slice(0, args.limit))
    return data


def _spec(args: argparse.Namespace, data: Any) -> Any:
    import xvae

    d = data.x.shape[1]
    if args.model == "vae":
        return xvae.VAESpec(input_dim=d, hidden=args.hidden, latents=args.latents, activation=args.activation)
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


def cmd_train(args: argparse.Namespace) -> int:
    import xvae
    from xvae import plots

    data = _data(args)
    if args.resume:
        model = xvae.load(args.resume, backend=args.backend, precision=args.precision)
    else:
        spec = _spec(args, data)
        cls = xvae.VAE if args.model == "vae" else xvae.Classifier
        model = cls(spec, backend=args.backend, seed=args.seed, precision=args.precision or "highest")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"xvae train: {model.kind} {model.spec.to_json()} on {data.name}/{data.split} "
          f"({len(data.x)} examples) with backend {model.backend!r}")
    val = _validation(args, data)
    fit_args: dict[str, Any] = {
        "epochs": args.epochs, "batch_size": args.batch_size,
        "optimizer": None if args.resume else _optimizer(args), "progress": not args.no_progress,
        "steps_per_call": args.steps_per_call, "resume": bool(args.resume),
        "checkpoint_dir": (out / "checkpoints") if args.checkpoint_every else None,
        "checkpoint_every": max(args.checkpoint_every, 1), "keep": args.keep}
    first_epoch = model.epoch
    if model.kind == "vae":
        hist = model.fit(data.x, binarize=_binarize(args.binarize), validation_data=None if val is None else val.x,
                         **fit_args)
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

    data = _data(args)
    spec = _spec(args, data)
    names = args.backends.split(",") if args.backends else None
    val = _validation(args, data)
    test = data if val is None else val
    result = compare(spec, data.x, data.y if args.model == "classifier" else None, x_test=test.x, y_test=test.y,
                     backends=names, epochs=args.epochs, batch_size=args.batch_size, optimizer=_optimizer(args),
                     seed=args.seed, binarize=_binarize(args.binarize), steps_per_call=args.steps_per_call)
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

    model = xvae.load(args.checkpoint, backend=args.backend)
    if model.kind != "vae":
        raise xvae.ConfigError(f"{args.checkpoint} holds a {model.kind}; sampling needs a VAE checkpoint.")
    plots.image_grid(model.sample(args.n, seed=args.seed, binary=args.binary), args.out, title="samples")
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
    data = _data(args)
    if model.kind == "vae":
        result = model.evaluate(data.x, seed=args.seed, binarize=_binarize(args.binarize))
    else:
        result = model.evaluate(data.x, data.y)
    print(json.dumps({"checkpoint": str(args.checkpoint), "backend": model.backend, "dataset": data.name,
                      "split": data.split, **result}))
    return 0


COMMANDS = {"backends": cmd_backends, "train": cmd_train, "compare": cmd_compare, "sample": cmd_sample,
            "convert": cmd_convert, "evaluate": cmd_evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `xvae` console script; returns the exit code (0, 1 or 2).

    Errors print one line on stderr (``xvae CMD: error: Type: message``); ``--debug``
    adds the traceback. Usage errors (argparse) exit 2, after argparse's usage line.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version (0) and usage errors (2)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
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
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
