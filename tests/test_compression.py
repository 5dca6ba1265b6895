"""Compressors: top-K selects what it says, error feedback loses nothing, sizes match docs/DESIGN.md section 2."""

import math

import numpy as np
import pytest
from conftest import make
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import ashlsim
from ashlsim.compression import (
    CompressionSpec,
    build_compressor,
    dense_bytes,
    identity,
    kept_count,
    message_bytes,
    payload_bytes,
    randk,
    topk,
)
from ashlsim.scenario import WorkloadSpec

vectors = arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e3, 1e3))


def send(compressor, delta, state=None):
    if state is None:
        state = compressor.init(delta.size)
    return compressor.compress(delta, state)


@given(vectors)
def test_topk_with_ratio_one_is_identity(v):
    full, _ = send(topk(1.0), v)
    same, _ = send(identity(), v)
    np.testing.assert_array_equal(full.decompress(), same.decompress())
    assert full.indices is None
    spec = CompressionSpec("topk", 1.0)
    built, _ = send(build_compressor(spec, np.random.default_rng(0)), v)
    np.testing.assert_array_equal(built.decompress(), v)


@given(vectors, st.floats(0.001, 1.0))
def test_topk_keeps_exactly_the_k_largest_magnitudes(v, ratio):
    message, _ = send(topk(ratio), v)
    k = kept_count(ratio, v.size)  # ceil(ratio * d), a rounding error above an integer ignored
    dense = message.decompress()
    kept = np.zeros(v.size, bool)
    kept[message.indices if message.indices is not None else slice(None)] = True
    assert kept.sum() == min(k, v.size)
    np.testing.assert_array_equal(dense[kept], v[kept])
    assert (dense[~kept] == 0).all()
    if (~kept).any():  # nothing left out is larger than anything sent
        assert np.abs(v[~kept]).max() <= np.abs(v[kept]).min()


@settings(max_examples=30)
@given(st.sampled_from(["topk", "randk"]), st.floats(0.01, 0.9), st.integers(0, 2**32 - 1))
def test_error_feedback_loses_nothing(name, ratio, seed):
    rng = np.random.default_rng(seed)
    compressor = build_compressor(CompressionSpec(name, ratio, True), np.random.default_rng(seed))
    state = compressor.init(50)
    deltas = rng.normal(size=(20, 50))
    sent = np.zeros(50)
    for delta in deltas:
        message, state = compressor.compress(delta, state)
        sent += message.decompress()
    np.testing.assert_allclose(sent + state, deltas.sum(axis=0), atol=1e-10)
    assert np.abs(state).max() > 0  # something was held back: the test is not vacuous


def test_without_error_feedback_the_remainder_is_dropped():
    v = np.array([3.0, -1.0, 0.5, 2.0])
    message, state = send(topk(0.5), v)
    assert state is None
    np.testing.assert_array_equal(message.decompress(), [3.0, 0, 0, 2.0])


def test_randk_is_seeded():
    v = np.arange(100.0)
    a, _ = send(randk(0.1, np.random.default_rng(7)), v)
    b, _ = send(randk(0.1, np.random.default_rng(7)), v)
    c, _ = send(randk(0.1, np.random.default_rng(8)), v)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert len(a.indices) == 10 and not np.array_equal(a.indices, c.indices)


def test_kept_count_is_the_ceiling_without_rounding_noise():
    assert kept_count(0.07, 100) == 7  # 0.07 * 100 = 7.000000000000001
    assert kept_count(0.0101, 1000) == 11
    assert kept_count(1e-9, 10) == 1 and kept_count(1.0, 10) == 10


def test_wire_sizes_follow_the_formula():
    w = WorkloadSpec()  # 4-byte values, 4-byte indices, 64-byte header
    assert dense_bytes(w, 1000) == 64 + 1000 * 4
    # K = 10 of 1000: values + indices (80) beat values + a 125-byte bitmap (165)
    assert message_bytes(w, 1000, 0.01) == 64 + 10 * 8
    assert message_bytes(w, 1000, 0.0101) == 64 + 11 * 8  # K = ceil(ratio * d)
    # K = 100 of 1000: the bitmap wins (400 + 125 < 800)
    assert message_bytes(w, 1000, 0.1) == 64 + 100 * 4 + 125
    # K = 630 of 1000: values + indices (5040) exceed dense (4000); the bitmap (2645) does not
    assert message_bytes(w, 1000, 0.63) == 64 + 630 * 4 + 125
    # K = 990 of 1000: dense is smallest (4000 < 3960 + 125)
    assert message_bytes(w, 1000, 0.99) == 64 + 4000
    message, _ = send(topk(0.05), np.arange(1.0, 201.0))
    assert message.wire_bytes(w) == 64 + 10 * 4 + 25  # bitmap of 200 bits
    virtual = WorkloadSpec(param_bytes=4e6)  # a 1M-value DNN stands behind the proxy model
    assert message.wire_bytes(virtual, 200) == 64 + 50_000 * 4 + 125_000


@given(st.integers(1, 5000), st.floats(0.0001, 1.0), st.integers(1, 8), st.integers(1, 8))
def test_a_compressed_message_never_costs_more_than_dense(size, ratio, value_b, index_b):
    w = WorkloadSpec(bytes_per_value=value_b, bytes_per_index=index_b)
    assert message_bytes(w, size, ratio) <= dense_bytes(w, size)
    k = kept_count(ratio, size)
    assert payload_bytes(w, size, k) == min(
        size * value_b, k * (value_b + index_b), k * value_b + math.ceil(size / 8)
    )


def test_topk_per_layer_keeps_k_of_each_tensor():
    v = np.array([10.0, 9, 8, 7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # tensors of 4 and 6
    message, _ = send(topk(0.5, segments=(4, 6)), v)
    assert message.indices.tolist() == [0, 1, 7, 8, 9]  # 2 of the first, 3 of the second
    whole, _ = send(topk(0.5), v)
    assert whole.indices.tolist() == [0, 1, 2, 3, 9]  # over the vector: the big tensor wins
    full, _ = send(topk(1.0, segments=(4, 6)), v)
    assert full.indices is None
    w = WorkloadSpec(bytes_per_index=1)
    assert message.wire_bytes(w) == 64 + 5 * 4 + 2  # values + a 10-bit bitmap beat 5 * 5
    assert message_bytes(w, 10, 0.5, segments=(4, 6)) == message.wire_bytes(w)


@pytest.mark.parametrize("scheme", ["bsp", "asp", "local_sgd"])
def test_any_scheme_pushes_the_compressed_size(scheme):
    compression = {"name": "topk", "ratio": 0.1, "error_feedback": True}
    result = ashlsim.run(make(strategy={"name": scheme, "compression": compression}))
    size = ashlsim.Simulation(make()).model_size
    per_push = 64 + min(kept_count(0.1, size) * 8, kept_count(0.1, size) * 4 + math.ceil(size / 8))
    w = result.workers
    assert (w["bytes_up"] == w["pushes"] * per_push).all()


def test_a_run_with_topk_per_layer_charges_each_tensors_k():
    compression = {"name": "topk", "ratio": 0.013, "scope": "layer"}
    scenario = make(model={"name": "mlp", "hidden": [7]}, strategy={"name": "asp",
                    "compression": compression})  # fmt: skip
    sim = ashlsim.Simulation(scenario)
    result = sim.run()
    workload, size, segments = scenario.workload, sim.model_size, sim.model.segments
    per_push = message_bytes(workload, size, 0.013, segments)
    assert per_push != message_bytes(workload, size, 0.013)  # per tensor, K is more here
    w = result.workers
    assert (w["pushes"] > 0).all() and (w["bytes_up"] == w["pushes"] * per_push).all()


def test_topk_at_full_ratio_changes_nothing_in_a_run():
    plain = ashlsim.run(make(strategy={"name": "asp"}))
    full = ashlsim.run(make(strategy={"name": "asp", "compression": {"name": "topk"}}))
    np.testing.assert_array_equal(plain.final_params, full.final_params)


def test_compression_reduces_bytes_and_still_learns():
    base = {"name": "asp", "compression": {"name": "topk", "ratio": 0.1, "error_feedback": True}}
    result = ashlsim.run(make(strategy=base, stop={"time_s": 3.0}))
    plain = ashlsim.run(make(strategy={"name": "asp"}, stop={"time_s": 3.0}))
    per_push = result.workers["bytes_up"].sum() / result.pushes_sent
    plain_per_push = plain.workers["bytes_up"].sum() / plain.pushes_sent
    assert per_push < 0.25 * plain_per_push
    assert result.history["accuracy"].iloc[-1] > 0.8


@given(st.integers(1, 500), st.floats(0.001, 1.0), st.integers(1, 4))
def test_charged_size_equals_the_message_size(size, ratio, tensors):
    """What a worker is charged (from its ratio) is what its top-K message carries, over the
    whole vector and per tensor."""
    w = WorkloadSpec()
    cuts = np.linspace(0, size, tensors + 1).astype(int)
    segments = tuple(int(n) for n in np.diff(cuts) if n > 0)
    for seg in (None, segments):
        message, _ = send(topk(ratio, segments=seg), np.arange(1.0, size + 1.0))
        charged = message_bytes(w, size, None if ratio >= 1.0 else ratio, seg)
        assert message.wire_bytes(w) == charged
