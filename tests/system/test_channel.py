from __future__ import annotations

import numpy as np
import pytest

from gelato_env.system import (
    ChannelBatch,
    ChannelProcess,
    GaussMarkovFading,
    RadioParams,
    RayleighBlockFading,
    TraceRate,
    TwoStateMarkovRate,
    make_channel,
    noise_power_w,
    path_gain,
    shannon_rate_bps,
)

RADIO = RadioParams()


def _trace(tmp_path, text: str, name: str = "bw.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def trace_path(tmp_path):
    return _trace(tmp_path, "timestamp_s,rate_bps\n0.0,1e6\n0.5,2e6\n# dip\n1.0,3e5\n1.2,4e6\n")


def _processes(trace_path):
    return [
        RayleighBlockFading(RADIO),
        GaussMarkovFading(RADIO, rho=0.8),
        TwoStateMarkovRate(RADIO),
        TraceRate(RADIO, trace_path),
        TraceRate(RADIO, trace_path, advance="time", random_start=True),
    ]


def test_processes_satisfy_protocol(trace_path):
    for process in _processes(trace_path):
        assert isinstance(process, ChannelProcess)


def test_scalar_and_batch_of_one_follow_the_same_random_stream(trace_path):
    for process in _processes(trace_path):
        rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
        state = process.reset(rng_a)
        batch = process.reset_batch(rng_b, 1)
        for _ in range(20):
            assert batch.rate_bps[0] == pytest.approx(state.rate_bps, rel=1e-12)
            assert batch.snr_db[0] == pytest.approx(state.snr_db, rel=1e-12)
            assert batch.gain[0] == pytest.approx(state.gain, rel=1e-12)
            state = process.step(rng_a, 0.3)
            batch = process.step_batch(rng_b, batch, np.array([0.3]))


def test_scalar_channel_returns_python_floats():
    state = RayleighBlockFading(RADIO).reset(np.random.default_rng(0))
    assert type(state.rate_bps) is float
    assert type(state.gain) is float


def test_rate_is_shannon_of_gain():
    state = RayleighBlockFading(RADIO).reset(np.random.default_rng(3))
    noise = noise_power_w(1e6, -174.0, 9.0)
    assert state.rate_bps == pytest.approx(shannon_rate_bps(1e6, 0.2, state.gain, noise))
    assert state.snr_db == pytest.approx(10 * np.log10(0.2 * state.gain / noise))


def test_rayleigh_fading_mean_is_path_gain(rng):
    batch = RayleighBlockFading(RADIO).reset_batch(rng, 200_000)
    assert batch.gain.mean() / path_gain(300.0) == pytest.approx(1.0, abs=0.01)
    # i.i.d. across rounds: lag-1 correlation of the fading gain is ~0.
    nxt = RayleighBlockFading(RADIO).step_batch(rng, batch)
    assert abs(np.corrcoef(batch.gain, nxt.gain)[0, 1]) < 0.01


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.95])
def test_gauss_markov_is_stationary_with_lag_one_correlation_rho(rho, rng):
    process = GaussMarkovFading(RADIO, rho=rho)
    first = process.reset_batch(rng, 200_000)
    second = process.step_batch(rng, first)
    h0, h1 = first.memory, second.memory
    assert np.mean(np.abs(h1) ** 2) == pytest.approx(1.0, abs=0.015)  # stationary CN(0, 1)
    assert np.real(np.mean(h1 * np.conj(h0))) == pytest.approx(rho, abs=0.01)
    # |h|^2 of CN(0,1) taps is correlated with coefficient rho^2.
    assert np.corrcoef(first.gain, second.gain)[0, 1] == pytest.approx(rho**2, abs=0.015)


def test_two_state_stationary_and_transition_frequencies(rng):
    process = TwoStateMarkovRate(
        RADIO, good_rate_bps=5e6, bad_rate_bps=1e5, p_good_to_bad=0.2, p_bad_to_good=0.6
    )
    first = process.reset_batch(rng, 100_000)
    assert set(np.unique(first.rate_bps)) == {5e6, 1e5}
    assert np.mean(first.memory) == pytest.approx(0.25, abs=0.01)  # 0.2 / (0.2 + 0.6)
    second = process.step_batch(rng, first)
    was_good = first.memory == 0
    assert np.mean(second.memory[was_good]) == pytest.approx(0.2, abs=0.01)
    assert np.mean(second.memory[~was_good] == 0) == pytest.approx(0.6, abs=0.015)


def test_trace_row_mode_advances_by_row_and_wraps(trace_path, rng):
    process = TraceRate(RADIO, trace_path)
    rates = [process.reset(rng).rate_bps] + [process.step(rng, 10.0).rate_bps for _ in range(5)]
    assert rates == [1e6, 2e6, 3e5, 4e6, 1e6, 2e6]


def test_trace_time_mode_is_piecewise_constant_in_time(trace_path, rng):
    process = TraceRate(RADIO, trace_path, advance="time", step_s=0.25)
    # Rows hold on [0, .5), [.5, 1), [1, 1.2), [1.2, 1.4); the trace wraps after 1.4 s.
    assert process.duration_s == pytest.approx(1.4)
    assert process.reset(rng).rate_bps == 1e6
    assert process.step(rng, 0.3).rate_bps == 1e6  # t = 0.3
    assert process.step(rng, 0.3).rate_bps == 2e6  # t = 0.6
    assert process.step(rng, 0.45).rate_bps == 3e5  # t = 1.05
    assert process.step(rng).rate_bps == 4e6  # t = 1.30 (default step_s)
    assert process.step(rng, 0.2).rate_bps == 1e6  # t = 1.50 -> 0.10 after wrap
    batch = process.reset_batch(rng, 3)
    batch = process.step_batch(rng, batch, np.array([0.1, 0.7, 1.25]))
    assert batch.rate_bps.tolist() == [1e6, 2e6, 4e6]


def test_trace_snr_is_the_equivalent_shannon_snr(trace_path, rng):
    state = TraceRate(RADIO, trace_path).reset(rng)
    noise = noise_power_w(1e6, -174.0, 9.0)
    assert shannon_rate_bps(1e6, 0.2, state.gain, noise) == pytest.approx(1e6, rel=1e-9)


def test_equivalent_snr_does_not_overflow_for_huge_rates(tmp_path, rng):
    path = _trace(tmp_path, "timestamp_s,rate_bps\n0,5e9\n")
    state = TraceRate(RADIO, path).reset(rng)
    assert state.snr_db == pytest.approx(10 * 5000 * np.log10(2.0))
    assert state.gain == np.inf


def test_batch_where_restarts_only_masked_envs(rng):
    process = GaussMarkovFading(RADIO, rho=0.9)
    batch = process.step_batch(rng, process.reset_batch(rng, 4))
    fresh = process.reset_batch(rng, 4)
    mask = np.array([True, False, False, True])
    merged = batch.where(mask, fresh)
    assert isinstance(merged, ChannelBatch)
    assert merged.memory.tolist() == [fresh.memory[0], *batch.memory[1:3], fresh.memory[3]]
    assert merged.rate_bps[1] == batch.rate_bps[1]
    assert len(merged) == 4


def test_same_seed_same_sequence(trace_path):
    for process in _processes(trace_path):
        runs = []
        for _ in range(2):
            rng = np.random.default_rng(99)
            states = [process.reset(rng)] + [process.step(rng, 0.2) for _ in range(10)]
            runs.append([s.rate_bps for s in states])
        assert runs[0] == runs[1]


def test_make_channel_by_name(trace_path):
    assert isinstance(make_channel("rayleigh", RADIO), RayleighBlockFading)
    assert make_channel("gauss_markov", RADIO, rho=0.3).rho == 0.3
    assert make_channel("two_state", RADIO, bad_rate_bps=1e4).rates_bps[1] == 1e4
    assert make_channel("trace", RADIO, path=trace_path, advance="time").advance == "time"


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        (
            "awgn",
            {},
            r"channel must be one of \['gauss_markov', 'rayleigh', 'trace', 'two_state'\]",
        ),
        ("rayleigh", {"rho": 0.5}, r"channel 'rayleigh' takes \[\], got unknown \['rho'\]"),
        ("gauss_markov", {"rho": 1.5}, r"rho must be in \[0, 1\], got 1.5"),
        ("two_state", {"bad_rate_bps": 0.0}, r"bad_rate_bps must be > 0, got 0.0"),
        ("two_state", {"p_good_to_bad": 0, "p_bad_to_good": 0}, r"must not both be 0"),
        ("two_state", {"p_bad_to_good": -0.1}, r"p_bad_to_good must be in \[0, 1\]"),
    ],
)
def test_make_channel_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_channel(name, RADIO, **kwargs)


def test_trace_bad_advance_mode(trace_path):
    with pytest.raises(ValueError, match=r"advance must be one of \['row', 'time'\], got 'wall'"):
        TraceRate(RADIO, trace_path, advance="wall")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", r"empty file, expected the header 'timestamp_s,rate_bps'"),
        ("time,rate\n0,1e6\n", r"line 1: expected the header 'timestamp_s,rate_bps'"),
        ("0,1e6\n1,2e6\n", r"line 1: expected the header"),
        ("timestamp_s,rate_bps\n", r"no data rows after the header"),
        ("timestamp_s,rate_bps\n0,1e6\n1,fast\n", r"line 3: non-numeric value"),
        ("timestamp_s,rate_bps\n0,1e6\n1,2e6,7\n", r"line 3: expected 2 columns, got 3"),
        ("timestamp_s,rate_bps\n0,1e6\n\n1,-5\n", r"line 4: rate_bps must be > 0, got -5.0"),
        ("timestamp_s,rate_bps\n0,0\n", r"line 2: rate_bps must be > 0, got 0.0"),
        ("timestamp_s,rate_bps\n0,1e6\n1,nan\n", r"line 3: values must be finite"),
        ("timestamp_s,rate_bps\n0,1e6\n2,1e6\n2,1e6\n", r"line 4: timestamps must strictly incr"),
        ("timestamp_s,rate_bps\n0,1e6\n2,1e6\n1,1e6\n", r"line 4: .*got 1.0 after 2.0"),
    ],
)
def test_malformed_trace_names_file_and_line(tmp_path, text, match):
    path = _trace(tmp_path, text, "broken.csv")
    with pytest.raises(ValueError, match=r"broken\.csv.*" + match):
        TraceRate(RADIO, path)


def test_missing_trace_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        TraceRate(RADIO, tmp_path / "absent.csv")


def test_rate_and_snr_db_equals_the_two_functions_bit_for_bit() -> None:
    from gelato_env.system.radio import rate_and_snr_db, shannon_rate_bps, snr_db

    gen = np.random.default_rng(3)
    gains = [0.0, 1e-30, *gen.exponential(size=200).tolist(), 1e-3]
    for gain in gains:
        got = rate_and_snr_db(2e6, 0.3, gain * 1e-11, 4e-15)
        assert got == (
            shannon_rate_bps(2e6, 0.3, gain * 1e-11, 4e-15),
            snr_db(0.3, gain * 1e-11, 4e-15),
        )
