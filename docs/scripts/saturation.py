"""Loss and gradient of three binary cross-entropies at saturated float32 logits.

Computes, in float32, for label 0 over logits from -120 to 120:

* naive:   BCE on probabilities, p = sigmoid(x), -(y log p + (1-y) log(1-p));
* clipped: the same with p clipped to [1e-7, 1 - 1e-7] (Keras' binary_crossentropy on the
           JAX and PyTorch backends, keras/src/backend/jax/nn.py);
* stable:  max(x, 0) - x*y + log1p(exp(-|x|)) on the logits (xvae in every backend; Keras on
           TensorFlow, which recovers the logits behind a sigmoid output, keras/src/backend/
           tensorflow/nn.py `_get_logits`).

Losses and gradients d loss / d logit come from JAX (jax.value_and_grad, float32) when JAX
is installed, else from NumPy float32 with the chain rule written out as autodiff applies it
(the same numbers, except where sigmoid(x) is subnormal: see `curves`).

Run:  python docs/scripts/saturation.py            # prints the Markdown table
      python docs/scripts/saturation.py --plot docs/img/saturation.png
"""

from __future__ import annotations

import argparse
import math

import numpy as np

F32 = np.float32
EPS = F32(1e-7)  # keras.config.epsilon()
#: The logits of the docs' table (label 0).
TABLE_LOGITS = (0.0, 10.0, 16.64, 20.0, 88.0, 104.0)
#: The other side, still label 0: correctly classified, yet the naive form breaks.
NEGATIVE_LOGITS = (-20.0, -87.0, -88.0, -104.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 logistic function as frameworks compute it: rounds to 1.0 from x ~ 16.64."""
    x = np.asarray(x, F32)
    with np.errstate(over="ignore"):
        return (F32(1) / (F32(1) + np.exp(-x))).astype(F32)


def naive_loss(x: np.ndarray, y: float) -> np.ndarray:
    p = sigmoid(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(F32(y) * np.log(p) + F32(1 - y) * np.log(F32(1) - p))


def clipped_loss(x: np.ndarray, y: float) -> np.ndarray:
    p = np.clip(sigmoid(x), EPS, F32(1) - EPS)
    return -(F32(y) * np.log(p) + F32(1 - y) * np.log(F32(1) - p))


def stable_loss(x: np.ndarray, y: float) -> np.ndarray:
    x = np.asarray(x, F32)
    return np.maximum(x, F32(0)) - x * F32(y) + np.log1p(np.exp(-np.abs(x)))


def _numpy_curves(x: np.ndarray, y: float) -> dict[str, np.ndarray]:
    """Losses, and gradients by the reverse-mode chain rule in float32, as autodiff evaluates it."""
    x = np.asarray(x, F32)
    y32 = F32(y)
    p = sigmoid(x)
    dp_dx = p * (F32(1) - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = (-y32 / p + (F32(1) - y32) / (F32(1) - p)) * dp_dx
        pc = np.clip(p, EPS, F32(1) - EPS)
        inside = ((p > EPS) & (p < F32(1) - EPS)).astype(F32)  # clip passes no gradient outside
        inside[(p == EPS) | (p == F32(1) - EPS)] = F32(0.5)  # and half at a tie, as jnp.clip does
        clipped = (-y32 / pc + (F32(1) - y32) / (F32(1) - pc)) * inside * dp_dx
    return {"sigmoid": p, "naive_loss": naive_loss(x, y), "naive_grad": naive.astype(F32),
            "clipped_loss": clipped_loss(x, y), "clipped_grad": clipped.astype(F32),
            "stable_loss": stable_loss(x, y), "stable_grad": (p - y32).astype(F32)}


def _jax_curves(x: np.ndarray, y: float) -> dict[str, np.ndarray]:
    """Losses and gradients (jax.value_and_grad) in JAX float32."""
    import jax
    import jax.numpy as jnp

    def naive(v: jax.Array) -> jax.Array:
        p = jax.nn.sigmoid(v)
        return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    def clipped(v: jax.Array) -> jax.Array:
        p = jnp.clip(jax.nn.sigmoid(v), 1e-7, 1 - 1e-7)
        return -(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))

    def stable(v: jax.Array) -> jax.Array:
        # The stable formula through log_sigmoid (optax; Keras on JAX with from_logits): the
        # values of max(x,0) - x*y + log1p(exp(-|x|)), with the kink-free gradient
        # sigmoid(x) - y (autodiff of max/abs picks a one-sided slope at x = 0).
        return -(y * jax.nn.log_sigmoid(v) + (1 - y) * jax.nn.log_sigmoid(-v))

    xs = jnp.asarray(x, jnp.float32)
    out = {"sigmoid": np.asarray(jax.nn.sigmoid(xs))}
    for name, fn in (("naive", naive), ("clipped", clipped), ("stable", stable)):
        value, grad = jax.vmap(jax.value_and_grad(fn))(xs)
        out[f"{name}_loss"], out[f"{name}_grad"] = np.asarray(value), np.asarray(grad)
    return out


def curves(x: np.ndarray, y: float = 0.0, use_jax: bool = True) -> dict[str, np.ndarray]:
    """Losses and gradients of the three forms at logits `x`, float32, in JAX if installed.

    JAX on CPU flushes float32 subnormals to zero (XLA's default), NumPy and PyTorch do
    not: the two differ only where sigmoid(x) is subnormal (about -88.7 < x < -87.3).
    """
    x = np.asarray(x, F32)
    if use_jax:
        try:
            import jax  # noqa: F401
        except ImportError:
            pass
        else:
            return _jax_curves(x, y)
    return _numpy_curves(x, y)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:.6g}"


def table(logits: tuple[float, ...] = TABLE_LOGITS, y: float = 0.0) -> str:
    """The docs' Markdown table: label `y`, one row per logit."""
    c = curves(np.array(logits, F32), y)
    head = ("| logit x | float32 sigmoid(x) | naive loss | naive grad | clipped loss | clipped grad "
            "| stable loss | stable grad |")
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, x in enumerate(logits):
        cells = [_fmt(float(c[k][i])) for k in ("sigmoid", "naive_loss", "naive_grad", "clipped_loss",
                                                  "clipped_grad", "stable_loss", "stable_grad")]
        lines.append(f"| {x:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: str, y: float = 0.0) -> None:
    """Loss (left) and gradient (right) of the three forms over logits -120..120; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(-120, 120, 4801, dtype=F32)
    c = curves(x, y)
    high = first_saturated_logit()
    low = float(x[~np.isfinite(c["naive_grad"]) & (x < 0)].max())  # naive breaks here too
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"stable": ("stable, from logits (xvae; Keras on TF)", "C0", "-"),
              "clipped": ("clipped probabilities (Keras on JAX/torch)", "C1", "--"),
              "naive": ("naive, on probabilities", "C3", ":")}
    for ax, what in zip(axes, ("loss", "grad")):
        ax.axvspan(high, 120, color="0.88", lw=0)
        ax.axvspan(-120, low, color="0.94", lw=0)
        for key, (label, color, ls) in styles.items():
            vals = c[f"{key}_{what}"].astype(np.float64)
            ax.plot(x, np.where(np.isfinite(vals), vals, np.nan), color=color, ls=ls, lw=2, label=label)
        ax.set_xlabel(f"logit x (label {y:g})")
        ax.set_xlim(-120, 120)
    axes[0].set_ylabel("loss")
    axes[0].set_title("binary cross-entropy in float32")
    axes[1].set_ylabel("d loss / d logit")
    axes[1].set_title("its gradient (nan and inf not drawn)")
    axes[1].set_ylim(-0.05, 1.1)
    axes[0].text(high + 3, 70, f"x >= {high:.2f}: float32\nsigmoid(x) == 1.0\nnaive: loss inf",
                 fontsize=8)
    axes[0].text(-117, 80, f"x <= {low:.1f}:\nsigmoid(x) == 0\nnaive: 0 log 0\n= nan", fontsize=8)
    axes[1].text(high + 3, 0.3, "clipped: grad 0\nnaive: grad nan\nstable: grad 1", fontsize=8)
    axes[1].text(-117, 0.3, "naive: grad nan", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def first_saturated_logit() -> float:
    """The smallest float32 x with float32 sigmoid(x) == 1.0."""
    x = np.arange(15, 18, 1e-4, dtype=F32)
    return float(x[sigmoid(x) == F32(1)].min())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default=None, help="write the figure to this PNG")
    args = parser.parse_args(argv)
    print(table())
    print()
    print(table(NEGATIVE_LOGITS))
    print(f"\nfirst float32 logit with sigmoid(x) == 1.0: {first_saturated_logit():.4f}")
    if args.plot:
        plot(args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
