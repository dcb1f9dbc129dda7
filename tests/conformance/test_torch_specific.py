"""What only the torch backend has to get right: the (out, in) layout, devices, TF32, torch.optim.

The cross-backend suite checks the numbers; these tests pin the torch-specific mechanisms
behind them, so a regression points at its cause.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='the torch backend needs torch: pip install "xvae[torch]"')

from cases import SPECS, STEP_RTOL, batch, program, rel_l2, weights

import xvae
from xvae.backend import CompileOptions
from xvae.losses import loss_for
from xvae.naming import STEP, optimizer_slots, slot_name, weight_shapes

if reason := xvae.backends.why_unavailable("torch"):
    pytest.skip(reason, allow_module_level=True)

from xvae_torch import _backend, _optim


def test_kernels_are_transposed_at_the_edge_only():
    """nn.Linear holds (out, in); everything that leaves the program is canonical (in, out)."""
    spec = SPECS["vae-h1-z20"]
    w = weights(spec, seed=3)
    prog = program("torch", spec, xvae.optim.Adam(1e-3), w=w)
    params = prog.model.variables_by_name()
    assert list(params) == list(weight_shapes(spec))
    for name, p in params.items():
        if name.endswith(".kernel"):
            assert tuple(p.shape) == w[name].shape[::-1], name
            np.testing.assert_array_equal(p.detach().numpy(), w[name].T, err_msg=name)
        else:
            np.testing.assert_array_equal(p.detach().numpy(), w[name], err_msg=name)
    got, state = prog.get_state()
    for name in w:  # bit-exact, float32, C-contiguous canonical copies
        np.testing.assert_array_equal(got[name], w[name], err_msg=name)
        assert got[name].dtype == np.float32 and got[name].flags.c_contiguous
        assert not np.shares_memory(got[name], params[name].detach().numpy())
    _, grads = prog.loss_and_grads(batch(spec, np.random.default_rng(0)))
    assert {k: g.shape for k, g in grads.items()} == weight_shapes(spec)
    assert set(state) == set(optimizer_slots(spec, ("m", "v")))


def test_set_state_rejects_wrong_names_and_shapes():
    spec = SPECS["clf-h0-o1"]
    prog = program("torch", spec)
    w = weights(spec)
    with pytest.raises(xvae.ConfigError, match="missing"):
        prog.set_state({k: v for k, v in w.items() if k != "output.bias"})
    with pytest.raises(xvae.ConfigError, match="shape"):
        prog.set_state({**w, "output.kernel": w["output.kernel"].T.copy().reshape(1, 16)})


@pytest.mark.parametrize(("cuda", "mps", "want"), [(True, True, "cuda"), (False, True, "mps"),
                                                  (False, False, "cpu")])
def test_device_order_cuda_mps_cpu(monkeypatch, cuda, mps, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(_backend, "_mps_available", lambda: mps)
    assert _backend.select_device().type == want
    assert _backend.select_device("cpu") == torch.device("cpu")  # options.device overrides


def test_requested_device_is_validated(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(_backend, "_mps_available", lambda: False)
    with pytest.raises(xvae.ConfigError, match="no CUDA device"):
        _backend.select_device("gpu")  # "gpu" is an alias of "cuda"
    with pytest.raises(xvae.ConfigError, match="MPS"):
        _backend.select_device("mps")
    with pytest.raises(xvae.ConfigError, match="not a torch device"):
        _backend.select_device("tpu:0")
    with pytest.raises(xvae.ConfigError, match="no CUDA device"):
        xvae.VAE(SPECS["vae-h0-z2"], backend="torch", device="cuda")


def test_torch_compile_only_where_it_pays(monkeypatch):
    monkeypatch.delenv("XVAE_TORCH_COMPILE", raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not _backend.use_torch_compile(CompileOptions(jit=True), cpu)  # warm-up > savings
    assert _backend.use_torch_compile(CompileOptions(jit=True), cuda)
    assert not _backend.use_torch_compile(CompileOptions(jit=False), cuda)
    monkeypatch.setenv("XVAE_TORCH_COMPILE", "1")
    assert _backend.use_torch_compile(CompileOptions(jit=False), cpu)


_FP32 = ("fp32_precision", "cudnn.fp32_precision", "cuda.matmul.fp32_precision",
         "cudnn.conv.fp32_precision", "cudnn.rnn.fp32_precision")  # parents before children


def _flag(path):
    owner, _, attr = f"backends.{path}".rpartition(".")
    target = torch
    for part in owner.split("."):
        target = getattr(target, part)
    return target, attr


@pytest.fixture
def restore_tf32():
    legacy = _backend._legacy_tf32()
    saved = [getattr(*_flag(p)) for p in _FP32]
    yield
    if legacy is not None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = legacy
    for path, value in zip(_FP32, saved):
        setattr(*_flag(path), value)


@pytest.mark.parametrize("user", [False, True])
def test_precision_sets_tf32_inside_calls_and_restores_it(restore_tf32, user):
    """precision="highest": TF32 off during xvae's calls; the caller's setting is restored."""
    torch.backends.cuda.matmul.allow_tf32 = user
    torch.backends.cudnn.allow_tf32 = user
    spec = SPECS["clf-h0-o1"]
    seen = []
    for precision in ("highest", "fast"):
        prog = program("torch", spec, xvae.optim.SGD(0.1), precision=precision)
        prog.model.by_name["output"].register_forward_pre_hook(
            lambda *_, precision=precision: seen.append(
                (precision, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)))
        b = batch(spec, np.random.default_rng(0))
        prog.train_step(b)
        prog.run("classify", x=b["x"])
        assert torch.backends.cuda.matmul.allow_tf32 is user  # restored after each call
        assert torch.backends.cudnn.allow_tf32 is user
    assert seen == [("highest", False, False)] * 2 + [("fast", True, True)] * 2


def test_tf32_context_speaks_the_new_fp32_precision_api(restore_tf32):
    """Once a caller used torch's fp32_precision API, reading the legacy flags raises
    (torch >= 2.9); the context then sets and restores the new flags instead."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    for path, value in zip(_FP32, ("none", "none", "tf32", "tf32", "tf32")):
        setattr(*_flag(path), value)
    assert _backend._legacy_tf32() is None  # the situation under test
    with _backend.tf32(False):
        assert [getattr(*_flag(p)) for p in _FP32[2:]] == ["ieee"] * 3
    assert [getattr(*_flag(p)) for p in _FP32] == ["none", "none", "tf32", "tf32", "tf32"]


def _keras_adam(spec, weights, grads, state):
    """Keras' epsilon-hat form (eps added before the bias correction): must NOT match."""
    t = state[STEP] + 1
    new_w, new_s = {}, {STEP: t}
    for name, w in weights.items():
        m = spec.b1 * state[slot_name("m", name)] + (1 - spec.b1) * grads[name]
        v = spec.b2 * state[slot_name("v", name)] + (1 - spec.b2) * grads[name] ** 2
        lr_t = spec.lr * np.sqrt(1 - spec.b2**t) / (1 - spec.b1**t)
        new_w[name] = w - lr_t * m / (np.sqrt(v) + spec.eps)
        new_s[slot_name("m", name)], new_s[slot_name("v", name)] = m, v
    return new_w, new_s


OPTIMIZERS = {
    "adam": xvae.optim.Adam(1e-2),
    "adam-eps1e-3": xvae.optim.Adam(3e-3, b1=0.8, b2=0.95, eps=1e-3),
    "sgd": xvae.optim.SGD(0.1),
    "sgd-m0.9": xvae.optim.SGD(0.1, momentum=0.9),
    "sgd-nesterov": xvae.optim.SGD(0.1, momentum=0.9, nesterov=True),
    "sgd-m0.9-wd": xvae.optim.SGD(0.1, momentum=0.9, weight_decay=0.05),
    "adamw": xvae.optim.AdamW(1e-2, weight_decay=0.1),
}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_torch_optim_implements_design_equations(opt, fused):
    """torch.optim as xvae configures it, run in float64: DESIGN §5 to float64 rounding.

    In float64 the only differences left are operation order (lerp vs b1*m + (1-b1)*g,
    sqrt(v)/sqrt(1-b2^t) vs sqrt(v/(1-b2^t))): ~1e-16. A different formula (Keras' eps-hat,
    lr inside the momentum buffer) shows up as >1e-8.
    """
    spec = OPTIMIZERS[opt]
    rng = np.random.default_rng(0)
    w0 = {"k": rng.normal(size=(7, 5)), "b": rng.normal(size=(5,))}
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in w0.items()}
    torch_opt = _optim.OPTIMIZERS[type(spec)](spec, list(params.values()), fused)
    ref_w, ref_s = dict(w0), {k: v.astype(np.float64) for k, v in spec.init_state(w0).items()}
    keras_w, keras_s = dict(ref_w), dict(ref_s)
    for _ in range(6):
        # gradients from 1e-6 to 1: eps placement matters for the small ones
        grads = {k: rng.normal(size=v.shape) * 10.0 ** rng.integers(-6, 1) for k, v in w0.items()}
        for k, p in params.items():
            p.grad = torch.tensor(grads[k])
        for group in torch_opt.param_groups:  # built with lr=0: the rate is a step input
            group["lr"] = spec.lr
        torch_opt.step()
        ref_w, ref_s = spec.update_reference(ref_w, grads, ref_s)
        if type(spec) is xvae.optim.Adam:
            keras_w, keras_s = _keras_adam(spec, keras_w, grads, keras_s)
    for k in w0:
        np.testing.assert_allclose(params[k].detach().numpy(), ref_w[k], rtol=1e-13, err_msg=k)
    if type(spec) is xvae.optim.Adam:
        assert max(rel_l2(params[k].detach().numpy(), keras_w[k]) for k in w0) > 1e-8


@pytest.mark.parametrize("opt", ["adam", "sgd-m0.9", "sgd-nesterov"])
def test_nonzero_optimizer_state_resumes_exactly(opt):
    """set_state with a mid-run state (step 7, nonzero m/v/u): the next update is DESIGN §5's."""
    spec, optimizer = SPECS["clf-h1-o10"], OPTIMIZERS[opt]
    rng = np.random.default_rng(1)
    w = weights(spec)
    state = {name: np.abs(rng.normal(0, 1e-3, shape)).astype(np.float32)
             for name, shape in optimizer_slots(spec, optimizer.slots).items()}
    state[STEP] = np.int64(7)
    prog = program("torch", spec, optimizer, w=w)
    prog.set_state(w, state)
    got_w, got_s = prog.get_state()
    for name, value in state.items():  # the state round trip is bit-exact
        np.testing.assert_array_equal(got_s[name], value, err_msg=name)
    if isinstance(optimizer, xvae.optim.Adam):  # torch's per-parameter step follows opt.step
        assert all(float(s["step"]) == 7.0 for s in prog.opt.torch.state.values())
    grads = {k: rng.normal(0, 1e-2, s).astype(np.float32) for k, s in weight_shapes(spec).items()}
    prog.apply_gradients(grads)
    want_w, want_s = optimizer.update_reference(w, grads, state)
    got_w, got_s = prog.get_state()
    for name in want_w:
        assert rel_l2(got_w[name], want_w[name]) <= STEP_RTOL, name
    for name in want_s:
        assert rel_l2(got_s[name], want_s[name]) <= STEP_RTOL, name
    assert got_s[STEP] == 8 and got_s[STEP].shape == () and got_s[STEP].dtype == np.int64


def test_fresh_momentum_buffers_exist_before_the_first_step():
    """torch creates momentum_buffer lazily (u = g); xvae preallocates zeros (same numbers)."""
    spec = SPECS["clf-h0-o1"]
    prog = program("torch", spec, OPTIMIZERS["sgd-m0.9"])
    bufs = [s["momentum_buffer"] for s in prog.opt.torch.state.values()]
    assert len(bufs) == 2 and all(not b.any() for b in bufs)
    prog.set_state(weights(spec), None)  # None: a fresh zero state again
    assert prog.get_state()[1][STEP] == 0


SATURATED = np.array([0.0, 1e-9, -1e-9, 20.0, -20.0, 88.0, -88.0, 104.0, -104.0, 1e9, -1e9], np.float32)


def test_categorical_cross_entropy_saturated_logits():
    """F.cross_entropy (log-sum-exp) stays finite and exact at logits up to ±1e9."""
    spec = xvae.ClassifierSpec(input_dim=3, outputs=3)
    w = {"output.kernel": np.eye(3, dtype=np.float32), "output.bias": np.zeros(3, np.float32)}
    prog = program("torch", spec, w=w)
    rng = np.random.default_rng(0)
    x = rng.choice(SATURATED, size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int32)
    want = xvae.losses.categorical_cross_entropy(x.astype(np.float64), y)
    for i in range(len(x)):
        mask = np.zeros(len(x), np.float32)
        mask[i] = 1.0
        metrics, grads = prog.loss_and_grads({"x": x, "y": y, "mask": mask})
        assert metrics["loss"] == pytest.approx(want[i], rel=1e-6, abs=1e-6), x[i]
        assert np.all(np.isfinite(grads["output.kernel"]))


def test_no_draw_from_torch_global_rng():
    """Randomness is passed, never global: building and training leave torch's RNG alone."""
    before = torch.random.get_rng_state()
    spec = SPECS["vae-h1-z20"]
    prog = program("torch", spec, xvae.optim.Adam(1e-3))
    prog.train_step(batch(spec, np.random.default_rng(0)))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_steps_return_device_tensors_and_accept_both_beta_forms():
    """No host sync in the step: metrics are 0-d tensors (the vector "kl_per_latent": (latents,));
    train_steps stacks them to (K,) ((K, latents))."""
    spec = SPECS["vae-h1-z20"]
    rng = np.random.default_rng(2)
    bs = [batch(spec, rng) for _ in range(3)]
    stacked = {k: np.stack([b[k] for b in bs]) for k in bs[0] if k != "beta"}
    one = program("torch", spec, xvae.optim.Adam(1e-3)).train_step(bs[0])
    tail = {name: (spec.encoder.latents,) if name == "kl_per_latent" else () for name in one}
    assert all(isinstance(v, torch.Tensor) and v.shape == tail[name] for name, v in one.items())
    results = []
    for beta in (np.float32(1.0), np.ones(3, np.float32)):
        prog = program("torch", spec, xvae.optim.Adam(1e-3))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # read-only inputs (np.broadcast_to) must not warn
            mask = np.broadcast_to(np.ones(bs[0]["mask"].shape, np.float32), stacked["mask"].shape)
            metrics = prog.train_steps({**stacked, "mask": mask, "beta": beta})
        assert all(isinstance(v, torch.Tensor) and v.shape == (3, *tail[name]) for name, v in metrics.items())
        results.append(prog.to_numpy(metrics)["loss"])
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit internals inductor imports
def test_torch_compile_path_matches_eager_and_compiles_once():
    """The CUDA default (torch.compile of the loss), forced on the CPU: the same numbers, and
    one graph for single steps and fused steps alike (views and both beta forms), with a new
    learning rate every step (the rate stays out of the compiled loss)."""
    from torch._dynamo.utils import counters

    spec, optimizer = SPECS["vae-h1-z20"], xvae.optim.Adam(1e-3)
    rng = np.random.default_rng(3)
    bs = [batch(spec, rng, lr=1e-3 * (i + 1)) for i in range(6)]
    stacked = {k: np.stack([b[k] for b in bs[2:]]) for k in bs[0] if k != "beta"}
    losses = []
    torch._dynamo.reset()
    counters.clear()
    for compiled in (False, True):
        prog = _backend.TorchProgram(spec, loss_for(spec), optimizer, CompileOptions(),
                                     torch.device("cpu"), compiled=compiled)
        prog.set_state(weights(spec))
        got = [float(prog.to_numpy(prog.train_step(b))["loss"]) for b in bs[:2]]
        got += prog.to_numpy(prog.train_steps({**stacked, "beta": np.ones(4, np.float32)}))["loss"].tolist()
        losses.append(got)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert counters["stats"]["unique_graphs"] == 1


def test_learning_rates_reach_torch_optim_without_a_rebuild():
    """The rate is set on the param groups per step: the torch.optim object and its state stay."""
    spec = SPECS["clf-h1-o10"]
    x = np.random.default_rng(0).random((70, 32), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, 70)
    clf = xvae.Classifier(spec, backend="torch", seed=0)
    sched = xvae.schedules.PiecewiseConstant(boundaries=[3], values=[1e-2, 1e-3])
    clf.fit(x, y, epochs=1, batch_size=16, progress=False, optimizer=xvae.optim.AdamW(sched))
    opt = clf._program.opt.torch
    assert [g["lr"] for g in opt.param_groups] == [float(np.float32(1e-3))]  # step 4's rate
    clf.fit(x, y, epochs=1, batch_size=16, progress=False, optimizer=xvae.optim.AdamW(5e-4))
    assert clf._program.opt.torch is opt and opt.param_groups[0]["lr"] == float(np.float32(5e-4))
    assert all(float(s["step"]) == 10.0 for s in opt.state.values())



def test_resident_batches_on_a_cpu_are_the_host_loops_draws():
    """On a CPU the resident gather draws with the host loop's NumPy functions (binarization
    computes uniforms only where 0 < x < 1, as `draw_epoch` does): the bits of
    keyed.uniform < x and keyed.normal, exactly (uniforms come from integer Threefry words)."""
    from xvae import keyed
    from xvae.backend import DeviceDraws
    from xvae_torch import _resident

    x = np.random.default_rng(0).random((50, 12), dtype=np.float32)
    x[x < 0.3], x[x > 0.8] = 0.0, 1.0  # MNIST-like: most values need no draw
    rows = torch.tensor([7, 3, 49, 0])
    batch = _resident.gather({"x": torch.from_numpy(x)}, rows, 11, 2, DeviceDraws(binarize=True, noise=(3,)))
    ids = rows.numpy()
    want = (keyed.uniform(11, 2, keyed.BINARIZE, ids, 12) < x[ids]).astype(np.float32)
    np.testing.assert_array_equal(batch["x"].numpy(), want)
    np.testing.assert_array_equal(batch["noise"].numpy(), keyed.normal(11, 2, keyed.NOISE, ids, 3).reshape(4, 3))
