"""Minimal reproducers of what fuzzing found (issue 14): each was a foreign
exception, a traceback, a hang or a memory blow-up; each must now be a
kaffe error (or, for valid input, the same result as before)."""
import pathlib
import time

import numpy as np
import pytest

import kaffe
from kaffe.memory import KaffeMemoryError, check_bytes, parse_bytes
from kaffe.tools.cli import main

LENET = str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "mnist"
             / "lenet.prototxt")
HUGE_INPUT = ('layer{name:"d" type:"Input" top:"d" '
              'input_param{shape{dim:1000000 dim:1000000}}}')


def _net(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- memory ceilings -----------------------------------------------------------
def test_absurd_blob_is_refused_before_allocating(tmp_path):
    # 81 bytes of prototxt declaring 10^12 float32 values (4 TB).
    path = _net(tmp_path, HUGE_INPUT)
    with pytest.raises(KaffeMemoryError, match=r"layer 'd' \(Input\).*"
                       r"\(1000000, 1000000\) needs 3\.6 TiB"):
        kaffe.Net(path, kaffe.TEST)


def test_explain_cli_refuses_absurd_blob_without_traceback(tmp_path, capsys):
    path = _net(tmp_path, HUGE_INPUT)
    assert main(["explain", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kaffe: error: ") and "Traceback" not in err
    assert "KAFFE_MAX_BYTES" in err


def test_blob_reshape_checks_the_ceiling_before_any_buffer():
    with pytest.raises(KaffeMemoryError, match="a blob of shape"):
        kaffe.Blob((2 ** 40, 2 ** 20))


def test_max_bytes_env_and_api(monkeypatch):
    lenet = LENET
    monkeypatch.setenv("KAFFE_MAX_BYTES", "1M")
    with pytest.raises(KaffeMemoryError, match="layer 'conv1'"):
        kaffe.Net(lenet, kaffe.TEST)
    monkeypatch.setenv("KAFFE_MAX_BYTES", "1G")
    kaffe.Net(lenet, kaffe.TEST)
    monkeypatch.delenv("KAFFE_MAX_BYTES")
    try:
        kaffe.set_max_bytes(3 << 20)     # each blob fits, the net does not
        with pytest.raises(KaffeMemoryError,
                           match="parameters and activations up to"):
            kaffe.Net(lenet, kaffe.TEST)
    finally:
        kaffe.set_max_bytes(None)
    assert parse_bytes("8G") == 8 << 30 and parse_bytes("1500") == 1500
    with pytest.raises(kaffe.KaffeError):
        parse_bytes("lots")


def test_check_bytes_is_exact_for_huge_products():
    with pytest.raises(KaffeMemoryError):
        check_bytes((2 ** 63) * (2 ** 63), "an absurd array")


def test_memory_error_in_forward_names_the_layer(tmp_path, monkeypatch):
    net = kaffe.Net(LENET, kaffe.TEST)
    layer = net.layer_dict["ip1"]

    def forward(bottom, top):
        raise MemoryError("no room")

    monkeypatch.setattr(layer, "forward", forward)
    with pytest.raises(KaffeMemoryError, match=r"layer 'ip1' \(InnerProduct"
                       r"\): ran out of memory while running forward"):
        net.forward()


# -- loops bounded by file values ---------------------------------------------
def test_lrn_huge_local_size_is_fast_and_exact(tmp_path):
    def run(size):
        path = _net(tmp_path, f"""
layer{{name:"d" type:"Input" top:"d"
       input_param{{shape{{dim:2 dim:3 dim:4 dim:4}}}}}}
layer{{name:"l" type:"LRN" bottom:"d" top:"l"
       lrn_param{{local_size:{size} alpha:1 beta:0.75}}}}""", f"{size}.pt")
        net = kaffe.Net(path, kaffe.TEST)
        net.blobs["d"].data[...] = np.arange(96).reshape(2, 3, 4, 4) / 50.
        net.forward()
        return net.blobs["l"].data.copy(), net
    start = time.monotonic()
    big, _ = run(2 ** 31 - 1)
    assert time.monotonic() - start < 5
    # Every window covers all 3 channels either way; only alpha/n differs,
    # so compare against the formula with the same n.
    x = np.arange(96).reshape(2, 3, 4, 4) / 50.
    scale = 1 + 1.0 / (2 ** 31 - 1) * (x * x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(big, x * scale ** -0.75, rtol=1e-6)


def test_spp_huge_pyramid_height_is_refused_at_once(tmp_path):
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:1 dim:3 dim:64 dim:64}}}
layer{name:"s" type:"SPP" bottom:"d" top:"s" spp_param{pyramid_height:2147483647}}""")
    start = time.monotonic()
    with pytest.raises(kaffe.KaffeShapeError, match="pyramid_height"):
        kaffe.Net(path, kaffe.TEST)
    assert time.monotonic() - start < 5


def test_adam_bias_correction_never_raises():
    from kaffe.solvers.adam import bias_correction
    assert bias_correction(0.9, 0.999, 1) == pytest.approx(
        np.sqrt(1 - 0.999) / (1 - 0.9))
    for beta1, beta2, t in [(0.0, 0.999, -1), (1.0, 1.0, 5), (0.9, 2.0, 3),
                            (0.9, 0.999, 10 ** 12), (0.9, 0.999, -10 ** 9),
                            (1e300, 1e300, 2 ** 31 - 1)]:
        bias_correction(beta1, beta2, t)     # inf or NaN, as in C++


def test_filler_refuses_impossible_ranges(tmp_path):
    for param, field in [('type:"uniform" min:2 max:1', "min/max"),
                         ('type:"uniform" min:-inf', "min/max"),
                         ('type:"gaussian" std:-1', "std")]:
        path = _net(tmp_path, f"""
layer{{name:"d" type:"Input" top:"d" input_param{{shape{{dim:1 dim:3}}}}}}
layer{{name:"ip" type:"InnerProduct" bottom:"d" top:"ip"
       inner_product_param{{num_output:2 weight_filler{{{param}}}}}}}""")
        with pytest.raises(kaffe.KaffeConfigError, match=field):
            kaffe.Net(path, kaffe.TEST)


# -- Python layers -------------------------------------------------------------
@pytest.mark.parametrize("module", ["..foo", ".x", "x.", "a b", ""])
def test_python_layer_relative_module_is_a_config_error(tmp_path, module):
    path = _net(tmp_path, f"""
layer{{name:"d" type:"Input" top:"d" input_param{{shape{{dim:1 dim:3}}}}}}
layer{{name:"p" type:"Python" bottom:"d" top:"p"
       python_param{{module:"{module}" layer:"L"}}}}""")
    with pytest.raises(kaffe.KaffeConfigError, match="python_param.module"):
        kaffe.Net(path, kaffe.TEST)


def test_inspection_never_imports_a_python_layer_module(tmp_path, capsys,
                                                        monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "fuzz_marker_layer.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:1 dim:3}}}
layer{name:"p" type:"Python" bottom:"d" top:"p"
      python_param{module:"fuzz_marker_layer" layer:"L"}}
layer{name:"ip" type:"InnerProduct" bottom:"p" top:"ip"
      inner_product_param{num_output:2}}""")
    assert main(["explain", path]) == 2
    err = capsys.readouterr().err
    assert "fuzz_marker_layer" in err and "--shape p=" in err
    assert main(["explain", path, "--shape", "p=1,3"]) == 0
    out = capsys.readouterr().out
    assert "fuzz_marker_layer.L not run" in out and "(1, 2)" in out
    assert main(["draw", path, str(tmp_path / "g.dot")]) == 0
    assert not marker.exists()
    # The API builds it as pycaffe does (importing the module).
    with pytest.raises(kaffe.KaffeConfigError, match="does not define"):
        kaffe.Net(path, kaffe.TEST)
    assert marker.exists()


# -- the CLI -------------------------------------------------------------------
def test_cli_internal_error_is_one_line_and_debug_shows_traceback(
        monkeypatch, capsys, tmp_path):
    from kaffe.tools import explain

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(explain, "run", broken)
    assert main(["explain", "x.prototxt"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "please report" in err and "boom" in err
    assert "Traceback" not in err
    assert main(["explain", "x.prototxt", "--debug"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


# -- solver states and HDF5 weights --------------------------------------------
@pytest.fixture
def snapshot_pair(tmp_path):
    """(solver path, binary state, HDF5 state, HDF5 weights) of a tiny run."""
    pytest.importorskip("h5py")
    from kaffe.testing.fuzz.corpus import TINY_TRAIN_NET
    net = tmp_path / "train.prototxt"
    net.write_text(TINY_TRAIN_NET)
    out = {}
    for fmt in ("BINARYPROTO", "HDF5"):
        solver = tmp_path / f"{fmt}.prototxt"
        solver.write_text(f'net: "{net}" base_lr: 0.01 type: "Adam" '
                          f'lr_policy: "fixed" max_iter: 2 '
                          f'snapshot_prefix: "{tmp_path}/{fmt}" '
                          f'snapshot_format: {fmt}')
        s = kaffe.get_solver(str(solver))
        s.step(1)
        out[fmt] = (str(solver),) + s.snapshot()
    return out


def _h5_state(snapshot_pair, tmp_path, edit):
    import shutil

    import h5py
    solver, _, state = snapshot_pair["HDF5"]
    target = str(tmp_path / "bad.solverstate.h5")
    shutil.copyfile(state, target)
    with h5py.File(target, "r+") as f:
        edit(f)
    return solver, target


H5_STATE_EDITS = {
    "negative iter": (lambda f: f["iter"].__setitem__(..., -5), "negative"),
    "iter as text": (lambda f: (f.__delitem__("iter"),
                                f.create_dataset("iter", data=b"abc")),
                     "not one integer"),
    "iter empty": (lambda f: (f.__delitem__("iter"),
                              f.create_dataset("iter", data=np.zeros(0))),
                   "not one integer"),
    "learned_net number": (lambda f: (f.__delitem__("learned_net"),
                                      f.create_dataset("learned_net",
                                                       data=3.5)),
                           "learned_net"),
    "learned_net not utf-8": (lambda f: (f.__delitem__("learned_net"),
                                         f.create_dataset(
                                             "learned_net",
                                             data=np.array(b"\xff\xfe", "S2"))),
                              "UTF-8"),
    "history huge": (lambda f: (f["history"].__delitem__("0"),
                                f["history"].create_dataset(
                                    "0", shape=(10 ** 6, 10 ** 6), dtype="f4",
                                    chunks=True)), "history blob 0"),
    "history text": (lambda f: (f["history"].__delitem__("1"),
                                f["history"].create_dataset("1", data=b"x")),
                     "history/1"),
    "history a dataset": (lambda f: (f.__delitem__("history"),
                                     f.create_dataset("history", data=[1.0])),
                          "'history'"),
    "history extra": (lambda f: f["history"].create_dataset(
        "99", data=[1.0]), "wrong number"),
    "soft link loop": (lambda f: (f.__delitem__("current_step"),
                                  f.__setitem__("current_step",
                                                __import__("h5py").SoftLink(
                                                    "/current_step"))),
                       "link"),
}


@pytest.mark.parametrize("case", sorted(H5_STATE_EDITS))
def test_damaged_hdf5_solver_state_is_a_kaffe_error(snapshot_pair, tmp_path,
                                                    case):
    edit, message = H5_STATE_EDITS[case]
    solver, state = _h5_state(snapshot_pair, tmp_path, edit)
    s = kaffe.get_solver(solver)
    with pytest.raises(kaffe.KaffeError, match=message) as info:
        s.restore(state)
    assert "bad.solverstate.h5" in str(info.value)


def test_negative_iter_in_binary_state_is_refused(snapshot_pair, tmp_path):
    from kaffe.proto import caffe_pb2
    solver, _, state = snapshot_pair["BINARYPROTO"]
    message = caffe_pb2.SolverState()
    message.ParseFromString(open(state, "rb").read())
    message.iter = -2 ** 31
    bad = tmp_path / "neg.solverstate"
    bad.write_bytes(message.SerializeToString())
    with pytest.raises(kaffe.KaffeFormatError, match="negative iter"):
        kaffe.get_solver(solver).restore(str(bad))
    message.iter = 1
    message.learned_net = "a\0b"
    bad.write_bytes(message.SerializeToString())
    with pytest.raises(kaffe.KaffeFormatError, match="learned_net"):
        kaffe.get_solver(solver).restore(str(bad))


def test_hdf5_weights_with_links_are_a_kaffe_error(snapshot_pair, tmp_path):
    import shutil

    import h5py
    from kaffe.testing.fuzz.corpus import TINY_NET
    net = tmp_path / "deploy.prototxt"
    net.write_text(TINY_NET)
    _, weights, _ = snapshot_pair["HDF5"]
    for name, link in [("loop", h5py.SoftLink("/data")),
                       ("dangling", h5py.SoftLink("/nowhere")),
                       ("external", h5py.ExternalLink("/etc/passwd", "/"))]:
        target = str(tmp_path / f"{name}.caffemodel.h5")
        shutil.copyfile(weights, target)
        with h5py.File(target, "r+") as f:
            del f["data/ip"]
            f["data/ip"] = link
        with pytest.raises(kaffe.KaffeFormatError, match=name + ".caffemodel"):
            kaffe.Net(str(net), kaffe.TEST, weights=target)


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_full_disk_during_snapshot_names_the_file_and_keeps_the_pair(
        snapshot_pair, fmt):
    resource = pytest.importorskip("resource")
    solver_path, model, state = snapshot_pair[fmt]
    before = (open(model, "rb").read(), open(state, "rb").read())
    solver = kaffe.get_solver(solver_path)
    solver.restore(state)
    solver.step(1)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
    try:
        with pytest.raises(kaffe.KaffeFormatError,
                           match=r"_iter_2\.caffemodel.*cannot be written"):
            solver.snapshot()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (open(model, "rb").read(), open(state, "rb").read()) == before
    import glob
    import os
    folder = os.path.dirname(model)
    assert not glob.glob(os.path.join(folder, "*iter_2*"))
    assert not glob.glob(os.path.join(folder, ".*.tmp"))
    kaffe.get_solver(solver_path).restore(state)    # still loads


def test_binaryproto_mean_with_absurd_shapes_is_refused():
    from kaffe.proto import caffe_pb2
    for dims in ([1] * 70, [-1, -5], [2 ** 32, 2 ** 32, 2 ** 32],
                 [0, 2 ** 40, 2 ** 40]):
        blob = caffe_pb2.BlobProto()
        blob.shape.dim.extend(dims)
        blob.data.extend([1.0] * (5 if dims[0] else 0))
        with pytest.raises(kaffe.KaffeShapeError):
            kaffe.io.blobproto_to_array(blob)


def test_pooling_window_loop_equals_offset_loop_bit_for_bit():
    """Large windows (SPP's level 0, global pooling, a huge kernel_size)
    loop over the windows instead of the kernel offsets; both loops give the
    same bits, masks and gradients (NaN, −inf, −FLT_MAX and ties included)."""
    import kaffe.ops.pooling as P

    def both(f, *args, **kw):
        old = P._WINDOW_LOOP_RATIO
        try:
            P._WINDOW_LOOP_RATIO = 10 ** 9          # always offsets
            a = f(*args, **kw)
            P._WINDOW_LOOP_RATIO = 0                # always windows
            b = f(*args, **kw)
        finally:
            P._WINDOW_LOOP_RATIO = old
        return a, b

    rng = np.random.default_rng(14)
    checked = 0
    while checked < 120:
        H, W = rng.integers(1, 10, 2)
        kh, kw = rng.integers(1, 7, 2)
        sh, sw = rng.integers(1, 4, 2)
        ph, pw = min(rng.integers(0, 3), kh - 1), min(rng.integers(0, 3), kw - 1)
        if H + 2 * ph < kh or W + 2 * pw < kw:
            continue
        out = (P.pool_output_size(H, kh, sh, ph),
               P.pool_output_size(W, kw, sw, pw))
        dtype = (np.float32, np.float64)[checked % 2]
        x = rng.integers(-3, 3, (2, 3, H, W)).astype(dtype)
        for value in (np.nan, -np.inf, -0.0, -3.4028235e38):
            x[rng.random(x.shape) < 0.1] = value
        geometry = ((kh, kw), (sh, sw), (ph, pw))
        (y1, m1), (y2, m2) = both(P.max_pool_forward, x, *geometry, out)
        assert np.array_equal(y1, y2, equal_nan=True)
        assert np.array_equal(m1, m2)
        smooth = rng.standard_normal(x.shape).astype(dtype)
        with np.errstate(all="ignore"):
            a1, a2 = both(P.ave_pool_forward, smooth, *geometry, out)
            dy = rng.standard_normal(a1.shape).astype(dtype)
            b1, b2 = both(P.ave_pool_backward, dy, x.shape, *geometry)
        assert np.array_equal(a1, a2, equal_nan=True)
        assert np.array_equal(b1, b2, equal_nan=True)
        checked += 1


def test_spp_over_a_large_plane_does_not_loop_per_kernel_offset(tmp_path):
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:1 dim:1 dim:1000 dim:1000}}}
layer{name:"s" type:"SPP" bottom:"d" top:"s" spp_param{pyramid_height:2}}""")
    net = kaffe.Net(path, kaffe.TEST)
    net.blobs["d"].data[...] = np.arange(10 ** 6).reshape(1, 1, 1000, 1000)
    start = time.monotonic()
    net.forward()
    assert time.monotonic() - start < 10     # a million-offset loop: ~40 s
    assert net.blobs["s"].data[0, 0] == 10 ** 6 - 1


def test_corrupted_lmdb_record_names_its_key(tmp_path):
    pytest.importorskip("lmdb")
    from kaffe.testing.fuzz.corpus import DATA_NET, write_lmdb
    good = kaffe.io.array_to_datum(np.zeros((1, 6, 6), np.uint8), label=1)
    records = [good.SerializeToString()] * 3
    records[1] = b"\xff\xff\xff not a datum"
    write_lmdb(tmp_path / "db", [(f"{i:08d}".encode(), r)
                                 for i, r in enumerate(records)])
    net = _net(tmp_path, DATA_NET % (tmp_path / "db"))
    with pytest.raises(kaffe.KaffeFormatError, match="record '00000001'"):
        n = kaffe.Net(net, kaffe.TRAIN)
        for _ in range(3):
            n.forward()


def test_explain_is_linear_in_the_number_of_layers(tmp_path):
    """5,000 layers took 34 s and 10,000 took 180 s (every top compared
    with every counted buffer); 8× the layers must now cost about 8× the
    time (a quadratic explain would take 64×)."""
    from kaffe.viz.explain import explain

    def deep(n):
        lines = ['layer { name: "data" type: "Input" top: "b0" '
                 'input_param { shape { dim: 1 dim: 2 } } }']
        lines += [f'layer {{ name: "l{i}" type: "ReLU" bottom: "b{i - 1}" '
                  f'top: "b{i}" }}' for i in range(1, n + 1)]
        return _net(tmp_path, "\n".join(lines), f"deep{n}.prototxt")

    def seconds(path):
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            report = explain(path)
            best = min(best, time.perf_counter() - start)
        return best, report

    small, _ = seconds(deep(400))
    large, report = seconds(deep(3200))
    assert len(report.layers) == 3201
    assert large / small < 24, (small, large)


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_kill_9_while_snapshotting_keeps_every_final_file_loadable(tmp_path,
                                                                    fmt):
    """kill -9 at a random point of a run that snapshots every iteration:
    no torn file under a final name, and the last pair resumes."""
    import glob
    import os
    import random
    import signal
    import subprocess
    import sys
    if fmt == "HDF5":
        pytest.importorskip("h5py")
    from kaffe.testing.fuzz.corpus import TINY_NET, TINY_TRAIN_NET
    (tmp_path / "train.prototxt").write_text(TINY_TRAIN_NET)
    (tmp_path / "deploy.prototxt").write_text(TINY_NET)
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{tmp_path}/train.prototxt" base_lr: 0.01 '
                      f'lr_policy: "fixed" momentum: 0.9 max_iter: 1000000 '
                      f'snapshot: 1 snapshot_prefix: "{tmp_path}/s" '
                      f'snapshot_format: {fmt}')
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.Popen([sys.executable, "-m", "kaffe", "train",
                             "--solver", str(solver)], env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ext = ".h5" if fmt == "HDF5" else ""
    try:
        deadline = time.monotonic() + 60
        while len(glob.glob(f"{tmp_path}/s_iter_*.solverstate{ext}")) < 3:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(random.Random().uniform(0, 0.3))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    net = kaffe.Net(str(tmp_path / "deploy.prototxt"), kaffe.TEST)
    models = glob.glob(f"{tmp_path}/s_iter_*.caffemodel{ext}")
    states = glob.glob(f"{tmp_path}/s_iter_*.solverstate{ext}")
    for model in models:
        net.copy_from(model)                      # none is torn
    iteration = lambda p: int(p.split("_iter_")[1].split(".")[0])  # noqa
    last = max(states, key=iteration)
    resumed = kaffe.get_solver(str(solver))
    resumed.restore(last)
    assert resumed.iter == iteration(last)


def test_python_sink_layer_is_not_imported_by_explain(tmp_path, capsys):
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:1 dim:3}}}
layer{name:"p" type:"Python" bottom:"d"
      python_param{module:"this" layer:"L"}}""")
    assert main(["explain", path]) == 0
    captured = capsys.readouterr()
    assert "Zen of Python" not in captured.out + captured.err
    assert "not run (module not imported)" in captured.out


def test_snapshot_prefix_with_nul_is_a_kaffe_error(tmp_path):
    from kaffe.proto.io import atomic_write
    with pytest.raises(kaffe.KaffeFormatError, match="cannot be written"):
        atomic_write(str(tmp_path / "a\0b"), b"x")


def test_explain_convolution_without_spatial_axes(tmp_path):
    from kaffe.viz.explain import explain
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:2 dim:6}}}
layer{name:"c" type:"Convolution" bottom:"d" top:"c"
      convolution_param{num_output:3 kernel_size:1}}""")
    report = explain(path)
    assert report.layers[1].top_shapes == [(2, 3)]
    assert "no spatial axes" in report.layers[1].formula


def test_pooling_with_uint32_max_stride_runs_as_caffe(tmp_path):
    path = _net(tmp_path, """
layer{name:"d" type:"Input" top:"d" input_param{shape{dim:1 dim:1 dim:6 dim:6}}}
layer{name:"p" type:"Pooling" bottom:"d" top:"p"
      pooling_param{pool:MAX kernel_size:2 stride:4294967295}}""")
    net = kaffe.Net(path, kaffe.TRAIN)
    net.blobs["d"].data[...] = np.arange(36).reshape(1, 1, 6, 6)
    net.forward()
    # ceil((6 − 2) / s) + 1 = 2 windows per axis; only the first is inside.
    assert net.blobs["p"].data[0, 0, 0, 0] == 7
    assert net.blobs["p"].data[0, 0, 1, 1] == -np.finfo(np.float32).max


def test_gaussian_filler_with_negative_zero_std():
    from kaffe.core.filler import fill
    from kaffe.proto import caffe_pb2
    blob = kaffe.Blob((2, 3))
    fill(blob, caffe_pb2.FillerParameter(type="gaussian", mean=1, std=-0.0))
    assert (blob.data == 1).all()


def test_file_names_with_nul_are_kaffe_errors(tmp_path):
    from kaffe.proto.hdf5 import is_hdf5
    assert not is_hdf5("a\0b")
    with pytest.raises(kaffe.KaffeFormatError, match="NUL"):
        kaffe.Net(LENET, kaffe.TEST, weights="w\0.caffemodel")


def test_transformer_refuses_an_empty_mean():
    transformer = kaffe.io.Transformer({"data": (1, 3, 6, 6)})
    with pytest.raises(kaffe.KaffeShapeError, match="empty"):
        transformer.set_mean("data", np.zeros((3, 0, 6)))
