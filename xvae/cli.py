"""The `xvae` command line: thin argument parsing over library functions.

Exit codes: 0 success, 1 an xvae error (one line on stderr; --debug shows the traceback),
2 a usage error (argparse's).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 500 or 256,128; got {text!r}") from None


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help="digits (bundled, default), mnist or fashion_mnist")
    p.add_argument("--split", default=None, help="training split (default: train; mnist here: test)")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (default: $XVAE_DATA_DIR or ~/.cache/xvae)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N examples")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=("vae", "classifier"), default="vae")
    p.add_argument("--hidden", type=_ints, default=(256,), help="hidden widths, e.g. 500 or 256,128")
    p.add_argument("--latents", type=int, default=2, help="VAE latent dimension (2 gives latent-space plots)")
    p.add_argument("--activation", default="relu")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (adam 1e-3, sgd 1e-2)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps-per-call", type=int, default=1, help="optimizer steps per compiled call")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xvae", description="Train the same VAE or classifier in JAX, TensorFlow or PyTorch.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("backends", help="list backends: installed?, version, device")

    train = sub.add_parser("train", help="train a model and write history, checkpoint and plots")
    _add_data(train)
    _add_model(train)
    train.add_argument("--backend", default=None, help="jax, tf, torch or numpy (default: first available)")
    train.add_argument("--out", default="runs/xvae", help="output folder (default runs/xvae)")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue from a checkpoint; --epochs is the total")
    train.add_argument("--checkpoint-every", type=int, default=0, help="also keep checkpoints every N epochs")
    train.add_argument("--precision", choices=("highest", "fast"), default="highest")
    train.add_argument("--no-progress", action="store_true")

    comp = sub.add_parser("compare", help="train the same spec in every backend and compare")
    _add_data(comp)
    _add_model(comp)
    comp.add_argument("--backends", default=None, help="comma-separated (default: every installed framework)")
    comp.add_argument("--json", default=None, help="write the table as JSON")
    comp.add_argument("--markdown", default=None, help="write the table as Markdown")

    sample = sub.add_parser("sample", help="decode samples from a VAE checkpoint into a PNG grid")
    sample.add_argument("checkpoint")
    sample.add_argument("-n", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--binary", action="store_true")
    sample.add_argument("--backend", default=None)
    sample.add_argument("--out", default="samples.png")

    conv = sub.add_parser("convert", help="load a checkpoint in another backend and save it")
    conv.add_argument("checkpoint")
    conv.add_argument("--to", required=True, help="target backend")
    conv.add_argument("--out", default=None, help="output checkpoint (default: overwrite in place)")

    ev = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset split")
    ev.add_argument("checkpoint")
    _add_data(ev)
    ev.add_argument("--backend", default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--binarize", choices=("none", "static", "dynamic"), default="none")
    return parser


def _data(args: argparse.Namespace, split: str | None = None) -> Any:
    from xvae import datasets

    name = args.dataset
    split = split or args.split or ("test" if name != "digits" else "train")
    data = datasets.load(name, split=split, data_dir=args.data_dir)
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

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _data(args)
    is_vae = args.model == "vae"
    if args.resume:
        model = xvae.load(args.resume, backend=args.backend, precision=args.precision)
    else:
        spec = _spec(args, data)
        cls = xvae.VAE if is_vae else xvae.Classifier
        model = cls(spec, backend=args.backend, seed=args.seed, precision=args.precision)
        is_vae = model.kind == "vae"
    print(f"xvae train: {model.kind} {model.spec.to_json()} on {data.name}/{data.split} "
          f"({len(data.x)} examples) with backend {model.backend!r}")
    val = _validation(args, data)
    fit_args = dict(epochs=args.epochs, batch_size=args.batch_size, optimizer=None if args.resume else _optimizer(args),
                    progress=not args.no_progress, steps_per_call=args.steps_per_call, resume=bool(args.resume),
                    checkpoint_dir=(out / "checkpoints") if args.checkpoint_every else None,
                    checkpoint_every=max(args.checkpoint_every, 1))
    if is_vae:
        hist = model.fit(data.x, binarize=_binarize(args.binarize), validation_data=val and val.x, **fit_args)
    else:
        hist = model.fit(data.x, data.y, validation_data=val and (val.x, val.y), **fit_args)
    hist.to_json(out / "history.json")
    model.save(out / "model.xvae")
    pngs = plots.save_all(model, hist, (val or data).x, out, labels=(val or data).y, image_shape=data.image_shape)
    last = {k: round(v[-1], 4) for k, v in hist.history.items()}
    print(f"final epoch {model.epoch}: {last}")
    print(f"wrote {out / 'history.json'}, {out / 'model.xvae'}, " + ", ".join(str(Path(p)) for p in pngs))
    return 0


def _validation(args: argparse.Namespace, data: Any) -> Any:
    """The held-out split: digits' test split; for MNIST here (test split only), none."""
    from xvae import datasets

    if data.name == "digits" and data.split == "train":
        return datasets.load("digits", split="test")
    return None


def cmd_compare(args: argparse.Namespace) -> int:
    from xvae.compare import compare

    data = _data(args)
    spec = _spec(args, data)
    names = args.backends.split(",") if args.backends else None
    test = _validation(args, data) or data
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
    data = _data(args, split=args.split or "test")
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
    """Entry point of the `xvae` console script; returns the exit code."""
    from xvae._errors import XVAEError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except XVAEError as err:
        if args.debug:
            traceback.print_exc()
        print(f"xvae {args.command}: error: {type(err).__name__}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("xvae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
