"""What only the JAX backend has to prove.

- One compile per batch shape: a padded epoch, a beta schedule and fused calls included.
- Donation: the step overwrites (params, opt_state) in place, yet nothing the caller holds
  (arrays given to set_state, arrays returned by get_state) is ever aliased or invalidated.
- precision="highest" is recorded on every matmul of the compiled step (forward and
  backward), scoped to xvae's functions; "fast" leaves JAX's default.
- optax: `optax.sgd` is DESIGN §5's PyTorch form as is; `optax.adam`'s float32 bias
  correction misses DESIGN §6's step tolerance, which is why the backend computes
  1 - b^t as -expm1(t log b) (xvae_jax/_optim.py).
- BCE's derivative is sigmoid(x) - y at x = 0 too (autodiff of the formula gives -y there).
- train_steps (lax.scan) gives train_step's numbers to float32 rounding (XLA may fuse the
  scan body differently from the single step, and the rounding of a fused multiply-add
  depends on the CPU's instruction set); jit=False gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import xvae
from xvae.naming import weight_shapes

from cases import FUSED_RTOL, OPTIMIZERS, SPECS, STEP_RTOL, batch, program, rel_l2, weights

if reason := xvae.backends.why_unavailable("jax"):
    pytest.skip(reason, allow_module_level=True)

jax = pytest.importorskip("jax", reason="the jax backend needs jax")
optax = pytest.importorskip("optax", reason="the jax backend needs optax")

from xvae_jax import _backend  # after the skip: this imports jax

ADAM = xvae.optim.Adam(1e-3)
#: optax.adam must miss the float64 equations by at least this factor times STEP_RTOL for
#: the hand-written bias correction to be worth having. Measured: 7.0e-6 relative L2 on the
#: biases after 3 steps (they start at 0, so that is the update's own error), 7 x STEP_RTOL;
#: the backend: 8e-8.
OPTAX_MARGIN = 3


def _cache_sizes(prog):
    steps = prog._steps
    return {name: getattr(steps, name)._cache_size() for name in ("train", "train_k", "eval")}


def _resident_sizes(prog):
    """Compiled shapes of the device-resident training scans (one function per draws)."""
    return {"train": sum(fn._cache_size() for fn in prog._steps._resident.values())}


def _fresh_spec(input_dim):
    """A spec no other test compiles (compiled functions are shared per spec), for cache counts."""
    return xvae.VAESpec(input_dim=input_dim, hidden=(7,), latents=3)


def test_one_compile_per_shape_over_a_padded_epoch():
    """The host loop (device_data=0): one train_step shape, one train_steps shape."""
    spec = _fresh_spec(11)
    x = np.random.default_rng(0).random((70, 11), dtype=np.float32)  # 4 full batches of 16 + 6 padded
    vae = xvae.VAE(spec, backend="jax", seed=0)
    vae.fit(x, epochs=2, batch_size=16, progress=False, beta=lambda epoch: 0.5 * (epoch + 1), device_data=0)
    assert _cache_sizes(vae._program)["train"] == 1
    vae.fit(x, epochs=2, batch_size=16, progress=False, steps_per_call=2, device_data=0)
    sizes = _cache_sizes(vae._program)
    assert sizes["train"] == 1 and sizes["train_k"] == 1, sizes


def test_one_compile_per_call_shape_on_resident_data():
    """Device-resident data: the padded tail is a masked step of the same call, so K=1 is one
    shape (1, B), K=2 over 5 steps adds (2, B), "epoch" adds (5, B); a new epoch or seed
    (traced inputs) compiles nothing, and the host loop's steps are never compiled."""
    spec = _fresh_spec(12)
    x = np.random.default_rng(0).random((70, 12), dtype=np.float32)
    vae = xvae.VAE(spec, backend="jax", seed=0)
    vae.fit(x, epochs=2, batch_size=16, progress=False, binarize="dynamic", device_data=0.5)
    prog = vae._program
    assert _resident_sizes(prog) == {"train": 1}
    vae.fit(x, epochs=2, batch_size=16, progress=False, binarize="dynamic", device_data=0.5, steps_per_call=2, seed=7)
    assert _resident_sizes(prog) == {"train": 2}
    vae.fit(x, epochs=1, batch_size=16, progress=False, binarize="dynamic", device_data=0.5, steps_per_call="epoch")
    assert vae._program is prog and _resident_sizes(prog) == {"train": 3}
    assert _cache_sizes(prog) == {"train": 0, "train_k": 0, "eval": 0}


def test_learning_rates_never_recompile():
    """A schedule (a new rate every step), a new constant rate, fused or single steps: one
    compilation per step function, and the program (with its optimizer state) is kept."""
    spec = _fresh_spec(13)
    x = np.random.default_rng(0).random((70, 13), dtype=np.float32)
    vae = xvae.VAE(spec, backend="jax", seed=0)
    sched = xvae.optim.AdamW(xvae.schedules.CosineDecay(peak=1e-2, decay_steps=20, warmup_steps=3), clip_norm=1.0)
    vae.fit(x, epochs=2, batch_size=16, progress=False, optimizer=sched, beta=xvae.schedules.LinearWarmup(1.0, 7),
            device_data=0)
    prog = vae._program
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=dataclasses.replace(sched, lr=3e-4),
            steps_per_call=2, device_data=0)
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=sched, steps_per_call=2, device_data=0)
    assert vae._program is prog
    sizes = _cache_sizes(prog)
    assert sizes["train"] == 1 and sizes["train_k"] == 1, sizes
    # the same on resident data: the rates are a per-step input of the epoch's calls
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=dataclasses.replace(sched, lr=1e-4),
            steps_per_call="epoch", device_data=0.5)
    vae.fit(x, epochs=1, batch_size=16, progress=False, optimizer=sched, steps_per_call="epoch", device_data=0.5)
    assert vae._program is prog and _resident_sizes(prog)["train"] == 1
    assert int(vae.get_optimizer_state()["opt.step"]) == vae.step == 30


@pytest.mark.parametrize("name", ["linear_warmup", "cosine_decay", "exponential_decay", "exponential_staircase"])
def test_schedules_are_optaxs(name):
    """xvae.schedules follow optax's definitions: the float64 references against optax's float32."""
    steps = np.arange(0, 400)
    S = xvae.schedules
    ours, theirs = {
        "linear_warmup": (S.LinearWarmup(peak=1e-3, warmup_steps=50, init=1e-5),
                          optax.linear_schedule(1e-5, 1e-3, 50)),
        "cosine_decay": (S.CosineDecay(peak=1e-3, decay_steps=300, warmup_steps=30, init=1e-5, final=1e-6),
                         optax.warmup_cosine_decay_schedule(1e-5, 1e-3, 30, 300, 1e-6)),
        "exponential_decay": (S.ExponentialDecay(1e-2, rate=0.5, decay_steps=100),
                              optax.exponential_decay(1e-2, 100, 0.5)),
        "exponential_staircase": (S.ExponentialDecay(1e-2, rate=0.5, decay_steps=100, staircase=True),
                                  optax.exponential_decay(1e-2, 100, 0.5, staircase=True)),
    }[name]
    want = np.array([float(theirs(int(t))) for t in steps])
    # optax computes in float32: a few ulps of the schedule's scale (max), relative near zero
    np.testing.assert_allclose(ours(steps), want, rtol=1e-5, atol=1e-6 * want.max())


def test_beta_scalar_or_per_step_one_compile():
    spec = _fresh_spec(12)
    rng = np.random.default_rng(1)
    group = [batch(spec, rng) for _ in range(4)]
    stacked = {k: np.stack([b[k] for b in group]) for k in group[0] if k != "beta"}
    betas = np.array([0.0, 0.5, 1.0, 2.0], np.float32)
    single = program("jax", spec, ADAM)
    want = [float(single.to_numpy(single.train_step({**b, "beta": beta}))["loss"]) for b, beta in zip(group, betas)]
    fused = program("jax", spec, ADAM)
    got = fused.to_numpy(fused.train_steps({**stacked, "beta": betas}))["loss"]
    np.testing.assert_allclose(got, np.asarray(want, np.float32), rtol=FUSED_RTOL)
    fused.to_numpy(fused.train_steps({**stacked, "beta": np.float32(1.0)}))  # scalar: broadcast, same shape
    assert _cache_sizes(single)["train"] == 1 and _cache_sizes(fused)["train_k"] == 1


@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("case", ["vae-h1-z20", "clf-h2-o1"])
def test_fused_steps_match_single_steps_on_cpu(case, opt):
    """lax.scan runs the single step's operations, but XLA may fuse them differently: on a
    2-core AVX-512 machine 2 of 6 losses differed by one float32 ulp (23.136064 vs
    23.136063). Same numbers to float32 rounding (FUSED_RTOL), never bit for bit."""
    spec = SPECS[case]
    prog = program("jax", spec, OPTIMIZERS[opt], device="cpu")
    fused = program("jax", spec, OPTIMIZERS[opt], device="cpu")
    rng = np.random.default_rng(2)
    group = [batch(spec, rng) for _ in range(6)]
    want = np.array([prog.to_numpy(prog.train_step(b))["loss"] for b in group])
    stacked = {k: np.stack([b[k] for b in group]) for k in group[0]}
    got = fused.to_numpy(fused.train_steps(stacked))["loss"]
    np.testing.assert_allclose(got, want, rtol=FUSED_RTOL)
    (w1, s1), (w2, s2) = prog.get_state(), fused.get_state()
    for name in w1:
        assert rel_l2(w2[name], w1[name]) <= FUSED_RTOL, name
    for name in s1:
        assert rel_l2(s2[name], s1[name]) <= FUSED_RTOL, name


def test_donation_never_touches_caller_arrays():
    spec = SPECS["vae-h1-z20"]
    w = weights(spec)
    given = {k: v.copy() for k, v in w.items()}
    prog = program("jax", spec, ADAM, w=given)
    old_leaf = prog._params["encoder.layers.0"]["kernel"]
    before, state_before = prog.get_state()
    metrics = prog.train_step(batch(spec, np.random.default_rng(3)))
    assert isinstance(metrics["loss"], jax.Array)  # stays on the device until to_numpy
    assert old_leaf.is_deleted(), "the train step should donate (params, opt_state)"
    for name in w:  # neither the arrays given to set_state nor those from get_state moved
        np.testing.assert_array_equal(given[name], w[name], err_msg=name)
        np.testing.assert_array_equal(before[name], w[name], err_msg=name)
        assert before[name].flags.writeable and before[name].flags.c_contiguous
    assert float(state_before["opt.step"]) == 0.0 and float(prog.get_state()[1]["opt.step"]) == 1.0
    prog.apply_gradients({k: np.ones_like(v) for k, v in w.items()})  # donates too, still consistent
    assert float(prog.get_state()[1]["opt.step"]) == 2.0


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_optimizer_state_round_trip_and_resume_exact(opt):
    """opt.step and every slot survive get_state -> set_state bit for bit; training resumes identically."""
    spec, rng = SPECS["clf-h2-o1"], np.random.default_rng(11)
    group = [batch(spec, rng) for _ in range(4)]
    first = program("jax", spec, OPTIMIZERS[opt])
    for b in group[:2]:
        first.train_step(b)
    w, s = first.get_state()
    assert set(s) == set(OPTIMIZERS[opt].init_state(w)) and float(s["opt.step"]) == 2.0
    second = program("jax", spec, OPTIMIZERS[opt], w=w)
    second.set_state(w, s)
    w2, s2 = second.get_state()
    for name in w:
        np.testing.assert_array_equal(w2[name], w[name], err_msg=name)
    for name in s:
        np.testing.assert_array_equal(s2[name], s[name], err_msg=name)
    for b in group[2:]:
        np.testing.assert_array_equal(second.to_numpy(second.train_step(b))["loss"],
                                      first.to_numpy(first.train_step(b))["loss"])
    second.set_state(w, None)  # None: fresh zero state
    assert all(not np.any(v) for v in second.get_state()[1].values())


def test_params_tree_uses_canonical_layer_names():
    """The flax tree is {canonical layer name: {kernel (in, out), bias}}: no transposes anywhere."""
    spec = SPECS["vae-h2-z20"]
    prog = program("jax", spec)
    tree = jax.tree.map(np.shape, prog._params)
    want = {}
    for name, shape in weight_shapes(spec).items():
        layer, leaf = name.rsplit(".", 1)
        want.setdefault(layer, {})[leaf] = shape
    assert tree == want


def _dot_precisions(prog, spec):
    b = prog._batch(batch(spec, np.random.default_rng(4)), train=True)
    text = prog._steps.train.lower((prog._params, prog._opt_state), b).as_text()
    dots = [line for line in text.splitlines() if "dot_general" in line]
    layers = len(weight_shapes(spec)) // 2
    assert len(dots) >= 2 * layers, "a forward and a weight-gradient matmul per layer at least"
    return [re.search(r"precision = \[(\w+), (\w+)\]", line) for line in dots]


def test_highest_precision_pins_every_matmul():
    spec = SPECS["vae-h1-z20"]
    found = _dot_precisions(program("jax", spec, ADAM, precision="highest"), spec)
    assert all(m is not None and m.groups() == ("HIGHEST", "HIGHEST") for m in found)
    fast = _dot_precisions(program("jax", spec, ADAM, precision="fast"), spec)
    assert not any(m is not None and "HIGHEST" in m.groups() for m in fast)
    assert jax.config.jax_default_matmul_precision is None, "the setting must stay scoped"


def _reference_steps(opt, w0, grad_steps):
    w, s = dict(w0), opt.init_state(w0)
    for grads in grad_steps:
        w, s = opt.update_reference(w, grads, s)
    return w


def _grad_steps(spec, n=3):
    rng = np.random.default_rng(6)
    return [{k: rng.normal(0, 1e-2, s).astype(np.float32) for k, s in weight_shapes(spec).items()}
            for _ in range(n)]


def _optax_steps(tx, w0, grad_steps):
    params = {k: jax.numpy.asarray(v) for k, v in w0.items()}
    state = tx.init(params)
    for grads in grad_steps:
        updates, state = tx.update({k: jax.numpy.asarray(v) for k, v in grads.items()}, state, params)
        params = optax.apply_updates(params, updates)
    return {k: np.asarray(v) for k, v in params.items()}


def test_optax_adam_misses_design_backend_adam_matches():
    """optax.adam computes 1 - b2**t in float32: 1 - float32(0.999) is 1.3e-5 off, every update ~7e-6."""
    spec = SPECS["vae-h1-z20"]
    w0, grad_steps = weights(spec), _grad_steps(spec)
    want = _reference_steps(ADAM, w0, grad_steps)
    plain = _optax_steps(optax.adam(ADAM.lr, ADAM.b1, ADAM.b2, ADAM.eps), w0, grad_steps)
    prog = program("jax", spec, ADAM, w=w0)
    for grads in grad_steps:
        prog.apply_gradients(grads)
    got = prog.get_state()[0]
    biases = [k for k in w0 if k.endswith(".bias")]  # start at 0: their weights are the update
    assert max(rel_l2(plain[k], want[k]) for k in biases) > OPTAX_MARGIN * STEP_RTOL
    assert max(rel_l2(got[k], want[k]) for k in w0) <= STEP_RTOL / 5


@pytest.mark.parametrize("opt", ["sgd", "sgd-m0.9", "sgd-nesterov"])
def test_optax_sgd_is_the_pytorch_form(opt):
    """optax.sgd's trace is u = g + momentum u, nesterov g + momentum u_new: used as is."""
    spec, sgd = SPECS["clf-h1-o10"], OPTIMIZERS[opt]
    w0, grad_steps = weights(spec), _grad_steps(spec)
    want = _reference_steps(sgd, w0, grad_steps)
    got = _optax_steps(optax.sgd(sgd.lr, sgd.momentum or None, sgd.nesterov), w0, grad_steps)
    for name in w0:
        assert rel_l2(got[name], want[name]) <= STEP_RTOL, name


def test_jit_off_gives_the_same_numbers():
    spec, rng = SPECS["clf-h1-o10"], np.random.default_rng(7)
    group = [batch(spec, rng) for _ in range(3)]
    eager, jitted = program("jax", spec, ADAM, jit=False), program("jax", spec, ADAM)
    for b in group:
        got = float(eager.to_numpy(eager.train_step(b))["loss"])
        assert got == pytest.approx(float(jitted.to_numpy(jitted.train_step(b))["loss"]), rel=1e-6)


def test_device_selection():
    cpu = _backend.resolve_device("cpu")
    assert cpu.platform == "cpu"
    assert _backend.resolve_device(None) == jax.devices()[0]  # JAX's default: a GPU when present
    prog = program("jax", SPECS["clf-h0-o1"], device="cpu")
    assert prog._params["output"]["kernel"].devices() == {cpu}
    assert prog.run("classify", x=np.zeros((2, 16), np.float32))["logits"].shape == (2, 1)
    with pytest.raises(xvae.ConfigError, match="no device 'tpu:7'"):
        program("jax", SPECS["clf-h0-o1"], device="tpu:7")


def test_labels_as_int64_or_column():
    """The core may hand over int64 class ids or (n, 1) binary labels; both are accepted."""
    spec = SPECS["clf-h1-o10"]
    b = batch(spec, np.random.default_rng(8))
    prog = program("jax", spec)
    want, _ = prog.loss_and_grads(b)
    assert prog.loss_and_grads({**b, "y": b["y"].astype(np.int64)})[0] == want
    spec1 = SPECS["clf-h0-o1"]
    b1 = batch(spec1, np.random.default_rng(9))
    prog1 = program("jax", spec1)
    assert prog1.loss_and_grads({**b1, "y": b1["y"][:, None]})[0] == prog1.loss_and_grads(b1)[0]


def test_zero_weights_gradients_match_reference():
    """All-zero weights make every logit exactly 0, where autodiff of max(x, 0) and |x| says 0."""
    spec = SPECS["vae-h1-z20"]
    w = {k: np.zeros(s, np.float32) for k, s in weight_shapes(spec).items()}
    b = batch(spec, np.random.default_rng(10))
    want_m, want_g = program("numpy", spec, w=w).loss_and_grads(b)
    got_m, got_g = program("jax", spec, w=w).loss_and_grads(b)
    assert got_m["loss"] == pytest.approx(want_m["loss"], rel=1e-6)
    assert np.any(want_g["decoder.output.bias"] != 0)
    for name in want_g:
        np.testing.assert_allclose(got_g[name], want_g[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_wrong_weights_are_refused():
    prog = program("jax", SPECS["clf-h0-o1"])
    w = weights(SPECS["clf-h0-o1"])
    with pytest.raises(xvae.ConfigError, match="missing"):
        prog.set_state({k: v for k, v in w.items() if k != "output.bias"})
    with pytest.raises(xvae.ConfigError, match="shape"):
        prog.set_state({**w, "output.bias": np.zeros(3, np.float32)})
