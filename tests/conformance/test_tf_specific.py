"""What only the TensorFlow backend has to prove.

- DESIGN §5's Adam is written by hand: Keras' own Adam (epsilon-hat form) gives different
  steps from identical gradients, the backend's matches the float64 equations.
- One trace per batch shape (a padded epoch, a beta schedule and fused calls included).
- The process-global switches: TF32 off once with one warning for precision="highest",
  TF's C++ log level defaulted before import, GPU memory growth.
- XLA on and off, and eager mode (jit=False), give the same numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cases import SPECS, STEP_RTOL, TRAJ_RTOL, batch, program, rel_l2, weights

import xvae
from xvae.naming import weight_shapes

if reason := xvae.backends.why_unavailable("tf"):
    pytest.skip(reason, allow_module_level=True)

tf = pytest.importorskip("tensorflow", reason="the tf backend needs tensorflow")
keras = pytest.importorskip("keras", reason="the Keras comparison needs keras")

ADAM_STEPS = 5
#: Keras' Adam must miss DESIGN §5 by at least this factor times STEP_RTOL to count as
#: "different". Measured: 5.2e-1 relative L2 after 5 steps (the biases start at 0, so their
#: relative L2 is that of the update itself), 5e5 x STEP_RTOL; the backend: 1e-7.
KERAS_MARGIN = 1000


def _small_gradients(spec, rng, steps):
    """|g| log-uniform in [1e-8, 1e-6] with random signs: sqrt(v_hat) is comparable to eps=1e-8
    and Keras' eps_hat = eps / sqrt(1 - b2^t) (3e-7 at t=1), so the placement of eps matters."""
    out = []
    for _ in range(steps):
        grads = {}
        for name, shape in weight_shapes(spec).items():
            mag = 10.0 ** rng.uniform(-8, -6, shape)
            grads[name] = (mag * rng.choice([-1.0, 1.0], shape)).astype(np.float32)
        out.append(grads)
    return out


def _keras_adam(w0, grad_steps, lr):
    variables = {k: keras.Variable(v, dtype="float32") for k, v in w0.items()}
    opt = keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)  # b1=0.9, b2=0.999 as DESIGN
    names = list(variables)
    for grads in grad_steps:
        opt.apply_gradients([(keras.ops.convert_to_tensor(grads[k]), variables[k]) for k in names])
    return {k: np.array(v.numpy(), np.float32) for k, v in variables.items()}


def test_keras_adam_differs_backend_adam_matches_reference():
    spec = SPECS["vae-h1-z20"]
    lr = 1e-3
    adam = xvae.optim.Adam(lr)
    w0 = weights(spec)
    grad_steps = _small_gradients(spec, np.random.default_rng(0), ADAM_STEPS)

    want_w = {k: v.astype(np.float64) for k, v in w0.items()}
    state = adam.init_state(w0)
    for grads in grad_steps:
        want_w, state = adam.update_reference(want_w, grads, state)

    prog = program("tf", spec, adam, w=w0)
    for grads in grad_steps:
        prog.apply_gradients(grads)
    got_w, got_s = prog.get_state()
    keras_w = _keras_adam(w0, grad_steps, lr)

    ours = max(rel_l2(got_w[k], want_w[k]) for k in want_w)
    theirs = max(rel_l2(keras_w[k], want_w[k]) for k in want_w)
    # The displacement w_N - w_0 isolates the update itself (the weights are ~1e2 x larger).
    moved = {k: want_w[k] - w0[k] for k in want_w}
    ours_step = max(rel_l2(got_w[k] - w0[k], moved[k]) for k in moved)
    theirs_step = max(rel_l2(keras_w[k] - w0[k], moved[k]) for k in moved)
    print(f"\nafter {ADAM_STEPS} Adam steps, |g| in [1e-8, 1e-6], max relative L2 vs float64 DESIGN §5:"
          f"\n  weights:      tf backend {ours:.2e}, keras.optimizers.Adam(eps=1e-8) {theirs:.2e}"
          f"\n  displacement: tf backend {ours_step:.2e}, keras.optimizers.Adam(eps=1e-8) {theirs_step:.2e}")
    assert ours <= STEP_RTOL, f"tf backend Adam vs DESIGN §5: {ours:.2e}"
    assert state["opt.step"] == got_s["opt.step"] == ADAM_STEPS
    for name in ("opt.m.encoder.layers.0.kernel", "opt.v.decoder.output.bias"):
        assert rel_l2(got_s[name], state[name]) <= STEP_RTOL, name
    assert theirs > KERAS_MARGIN * STEP_RTOL, (
        f"Keras' Adam was expected to differ from DESIGN §5 here; it is within {theirs:.2e}")
    assert theirs_step > 10 * ours_step


def test_keras_adam_is_not_used():
    """The program holds plain tf.Variables and its own update; no Keras optimizer state."""
    prog = program("tf", SPECS["clf-h0-o1"], xvae.optim.Adam(1e-3))
    assert all(isinstance(v, tf.Variable) for v in prog._vars)
    assert not any(isinstance(v, keras.optimizers.Optimizer) for v in vars(prog).values())


def test_one_trace_per_shape_over_a_padded_epoch():
    spec = SPECS["vae-h1-z20"]
    x = np.random.default_rng(0).random((70, 32), dtype=np.float32)  # 4 batches of 16 + 6 padded
    vae = xvae.VAE(spec, backend="tf", seed=0)
    vae.fit(x, epochs=2, batch_size=16, progress=False, beta=lambda epoch: 0.5 * epoch, device_data=0)
    prog = vae._program
    assert prog._train.experimental_get_tracing_count() == 1
    vae.fit(x, epochs=1, batch_size=16, progress=False, steps_per_call=4, beta=0.3, device_data=0)
    assert vae._program is prog, "same optimizer: the program is reused"
    assert prog._train_many.experimental_get_tracing_count() == 1  # 1 fused group per epoch
    assert prog._train.experimental_get_tracing_count() == 1  # the padded tail, same shape


def _resident_traces(prog):
    return {"train": sum(fn.experimental_get_tracing_count() for fn in prog._resident_fns.values())}


def test_one_trace_per_call_shape_on_resident_data():
    """Device-resident data: K=1 is one call shape (1, B) (the padded tail is a masked step of
    it), K=4 over 5 steps adds (4, B), after which reduce_retracing has relaxed the leading
    axis, so "epoch" (5, B) reuses that trace; new epochs, seeds and rates are tensor inputs,
    and the host loop's step functions are never traced."""
    spec = SPECS["vae-h1-z20"]
    x = np.random.default_rng(0).random((70, 32), dtype=np.float32)
    vae = xvae.VAE(spec, backend="tf", seed=0)
    vae.fit(x, epochs=2, batch_size=16, progress=False, binarize="dynamic", device_data=0.5)
    prog = vae._program
    assert _resident_traces(prog) == {"train": 1}
    vae.fit(x, epochs=2, batch_size=16, progress=False, binarize="dynamic", device_data=0.5, steps_per_call=4, seed=3,
            optimizer=xvae.optim.Adam(3e-4))
    assert _resident_traces(prog) == {"train": 2}
    vae.fit(x, epochs=1, batch_size=16, progress=False, binarize="dynamic", device_data=0.5, steps_per_call="epoch")
    assert vae._program is prog and _resident_traces(prog) == {"train": 2}
    assert prog._train.experimental_get_tracing_count() == 0
    assert prog._train_many.experimental_get_tracing_count() == 0


def test_learning_rates_never_retrace():
    """A schedule (a new rate every step), a new constant rate and a callback's change all
    reach the step as its "lr" tensor input: one trace per step function, the same program."""
    spec = SPECS["vae-h1-z20"]
    x = np.random.default_rng(0).random((70, 32), dtype=np.float32)
    vae = xvae.VAE(spec, backend="tf", seed=0)
    sched = xvae.optim.Adam(xvae.schedules.CosineDecay(peak=1e-2, decay_steps=20, warmup_steps=3))
    vae.fit(x, epochs=2, batch_size=16, progress=False, optimizer=sched,
            beta=xvae.schedules.LinearWarmup(1.0, 7), device_data=0)
    prog = vae._program
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=xvae.optim.Adam(3e-4), steps_per_call=2,
            device_data=0)
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=sched, steps_per_call=2, device_data=0)
    assert vae._program is prog
    assert prog._train.experimental_get_tracing_count() == 1
    assert prog._train_many.experimental_get_tracing_count() == 1
    assert int(vae.get_optimizer_state()["opt.step"]) == vae.step == 20


def test_fused_beta_scalar_or_per_step():
    spec = SPECS["vae-h1-z20"]
    rng = np.random.default_rng(1)
    group = [batch(spec, rng) for _ in range(4)]
    stacked = {k: np.stack([b[k] for b in group]) for k in group[0] if k != "beta"}
    a = program("tf", spec, xvae.optim.Adam(1e-3))
    b = program("tf", spec, xvae.optim.Adam(1e-3))
    la = a.to_numpy(a.train_steps({**stacked, "beta": np.float32(0.5)}))
    lb = b.to_numpy(b.train_steps({**stacked, "beta": np.full(4, 0.5, np.float32)}))
    assert la["loss"].shape == (4,)
    np.testing.assert_array_equal(la["loss"], lb["loss"])


@pytest.mark.parametrize("options", [{"xla": False}, {"jit": False}], ids=["no-xla", "eager"])
def test_xla_and_eager_give_the_same_numbers(options):
    spec = SPECS["clf-h1-o10"]
    rng = np.random.default_rng(2)
    batches = [batch(spec, rng) for _ in range(10)]
    xla = program("tf", spec, xvae.optim.SGD(0.05, momentum=0.9), xla=True)
    other = program("tf", spec, xvae.optim.SGD(0.05, momentum=0.9), **options)
    want = [float(xla.to_numpy(xla.train_step(b))["loss"]) for b in batches]
    got = [float(other.to_numpy(other.train_step(b))["loss"]) for b in batches]
    np.testing.assert_allclose(got, want, rtol=TRAJ_RTOL)
    for name, w in xla.get_state()[0].items():
        assert rel_l2(other.get_state()[0][name], w) <= 1e-5, name


SATURATED = [1e9, 104.0, 88.0, 20.0, 0.0]


@pytest.mark.parametrize("xla", [True, False], ids=["xla", "no-xla"])
def test_softmax_cross_entropy_saturated(xla):
    """tf.nn.sparse_softmax_cross_entropy_with_logits stays exact at saturated logit gaps."""
    spec = xvae.ClassifierSpec(input_dim=2, outputs=2)
    w = {"output.kernel": np.eye(2, dtype=np.float32), "output.bias": np.zeros(2, np.float32)}
    prog = program("tf", spec, w=w, xla=xla)
    for gap in SATURATED:
        for label in (0, 1):
            x = np.array([[gap / 2, -gap / 2]], np.float32)
            b = {"x": x, "y": np.array([label], np.int32), "mask": np.ones(1, np.float32)}
            metrics, grads = prog.loss_and_grads(b)
            want = xvae.losses.categorical_cross_entropy(x.astype(np.float64), [label])[0]
            assert metrics["loss"] == pytest.approx(want, rel=1e-6, abs=1e-7), (gap, label)
            assert np.all(np.isfinite(grads["output.kernel"])), (gap, label)


@pytest.mark.parametrize("xla", [True, False], ids=["xla", "no-xla"])
def test_bce_saturated_logits_with_and_without_xla(xla):
    spec = xvae.ClassifierSpec(input_dim=1, outputs=1)
    w = {"output.kernel": np.ones((1, 1), np.float32), "output.bias": np.zeros(1, np.float32)}
    prog = program("tf", spec, w=w, xla=xla)
    logits = np.array([88.0, -88.0, 104.0, -104.0, 1e9, -1e9], np.float32)
    for label in (0.0, 1.0):
        for i, logit in enumerate(logits):
            mask = np.zeros(len(logits), np.float32)
            mask[i] = 1.0
            b = {"x": logits[:, None], "y": np.full(len(logits), label, np.float32), "mask": mask}
            got = prog.loss_and_grads(b)[0]["loss"]
            want = float(xvae.losses.binary_cross_entropy(np.float64(logit), label))
            assert got == pytest.approx(want, rel=1e-6, abs=1e-7), (logit, label)


def test_device_names():
    from xvae_tf._backend import _resolve_device

    assert _resolve_device("cpu") == "/CPU:0"
    assert _resolve_device("/device:CPU:0") == "/CPU:0"
    with pytest.raises(xvae.ConfigError, match="cpu"):
        _resolve_device("tpu")
    if not tf.config.list_logical_devices("GPU"):
        assert _resolve_device(None) == "/CPU:0"
        with pytest.raises(xvae.ConfigError, match="not available"):
            _resolve_device("cuda:0")
    prog = program("tf", SPECS["clf-h0-o1"], device="cpu")
    assert "CPU" in prog._vars[0].device


@pytest.mark.skipif(not tf.config.list_physical_devices("GPU"), reason="no GPU visible to TensorFlow")
def test_gpu_memory_growth_and_full_float32_on_gpu():
    for gpu in tf.config.list_physical_devices("GPU"):
        assert tf.config.experimental.get_memory_growth(gpu)
    spec = xvae.ClassifierSpec(input_dim=784, hidden=(512,), outputs=10)
    x = {"x": np.random.default_rng(0).random((64, 784), dtype=np.float32)}
    want = program("numpy", spec).run("classify", **x)["logits"]
    got = program("tf", spec, precision="highest").run("classify", **x)["logits"]
    assert rel_l2(got, want) <= 1e-5  # TF32 would give ~1e-3


_PROCESS_GLOBALS = textwrap.dedent("""
    import json, os, warnings
    os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
    import numpy as np, xvae
    from xvae.backend import CompileOptions
    from xvae.losses import loss_for
    backend = xvae.backends.get("tf")
    import tensorflow as tf
    out = {"log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"), "gpus": len(tf.config.list_physical_devices("GPU"))}
    spec = xvae.ClassifierSpec(input_dim=4, outputs=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend.compile(spec, loss_for(spec), None, CompileOptions(precision="fast"))
        out["fast_tf32"] = tf.config.experimental.tensor_float_32_execution_enabled()
        out["fast_warnings"] = len(caught)
        for _ in range(3):
            backend.compile(spec, loss_for(spec), None, CompileOptions(precision="highest"))
        out["highest_tf32"] = tf.config.experimental.tensor_float_32_execution_enabled()
        out["warnings"] = [str(w.message) for w in caught]
    try:
        backend.compile(spec, loss_for(spec), None, CompileOptions(precision="double"))
    except xvae.ConfigError as err:
        out["bad_precision"] = str(err)
    print(json.dumps(out))
""")


def test_process_global_switches():
    """TF32 off once for "highest" (one warning where a GPU exists, none on a CPU), untouched by "fast"; log level "2"."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", _PROCESS_GLOBALS], check=False, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["log_level"] == "2"
    assert out["fast_tf32"] is True and out["fast_warnings"] == 0
    assert out["highest_tf32"] is False
    # TF32 exists only on GPUs: a CPU-only process is not told about a switch that changes nothing
    assert len(out["warnings"]) == (1 if out["gpus"] else 0)
    assert all("TensorFloat-32" in w for w in out["warnings"])
    assert "highest" in out["bad_precision"] and "double" in out["bad_precision"]
