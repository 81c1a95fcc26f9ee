"""The load-following keep ratio, without a server: a simulated dynamic-batching queue drives the controller."""
import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.serving.controller import KeepRatioController, ServiceClock

LADDER = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]


def test_steps_down_over_target_and_up_well_under_it():
    c = KeepRatioController(100.0, LADDER, window=4, hold=1)
    assert c.ratio == 1.0
    assert c.record([150.0] * 3) == 1.0            # window not full yet: no decision
    assert c.record([150.0]) == 0.9                # p99 150 > 100
    assert c.record([90.0] * 4) == 0.9             # between 60 and 100: hold
    assert c.record([40.0] * 4) == 1.0             # p99 40 < 0.6 * 100: back up
    assert c.record([40.0] * 4) == 1.0             # already at the top
    for _ in range(10):
        c.record([500.0] * 4)
    assert c.ratio == 0.5                          # never below the lowest rung


def test_full_batches_step_down_before_latency_shows_it():
    c = KeepRatioController(100.0, LADDER, window=64, hold=3)
    assert [c.record([10.0], full=True) for _ in range(3)] == [1.0, 1.0, 0.9]
    assert [c.record([10.0], full=n != 1) for n in range(3)] == [0.9, 0.9, 0.9]   # the streak was broken


@pytest.mark.parametrize("kwargs", [dict(target_p99_ms=0, ratios=LADDER), dict(target_p99_ms=10, ratios=[]),
                                    dict(target_p99_ms=10, ratios=[1.2]),
                                    dict(target_p99_ms=10, ratios=LADDER, raise_below=1.5)])
def test_rejects_bad_settings(kwargs):
    with pytest.raises(UserError):
        KeepRatioController(**kwargs)


def test_service_clock_charges_the_previous_period_only_when_busy():
    clock = ServiceClock(idle_gap_ms=1.0)
    assert clock.latencies(0.000, 0.050, 2) == [pytest.approx(50.0)] * 2     # first batch: no wait known
    assert clock.latencies(0.0502, 0.100, 1) == [pytest.approx(100.0)]        # started right after: waited <= 50
    assert clock.latencies(0.300, 0.340, 1) == [pytest.approx(40.0)]          # idle before it: no wait


def simulate(arrivals, choose_ratio, report, max_batch=4):
    """A one-instance dynamic batcher (sends whatever is queued, up to max_batch, as soon as it is free).

    Service time of a batch: 4 ms + 20 ms * r * images (work shrinks with the keep ratio).
    Returns per request (arrival, latency ms, ratio) and calls report(start, end, count, true latencies).
    """
    out, t, i = [], 0.0, 0
    while i < len(arrivals):
        t = max(t, arrivals[i])
        batch = [a for a in arrivals[i:i + max_batch] if a <= t]
        r = choose_ratio()
        end = t + (4 + 20 * r * len(batch)) / 1e3
        lat = [(end - a) * 1e3 for a in batch]
        report(t, end, len(batch), lat)
        out += [(a, l, r) for a, l in zip(batch, lat)]
        i, t = i + len(batch), end
    return out


def test_ratio_follows_the_load_and_keeps_p99_under_target():
    rng = np.random.default_rng(0)
    # low load (10/s), then more than r = 1.0 can serve (60/s: capacity at r = 1 is ~45/s), then low again
    phases = [(10, 20.0), (60, 20.0), (10, 30.0)]
    arrivals, t0 = [], 0.0
    for rate, seconds in phases:
        arrivals += list(t0 + np.sort(rng.uniform(0, seconds, int(rate * seconds))))
        t0 += seconds
    controller, clock = KeepRatioController(150.0, LADDER, window=32, hold=2), ServiceClock()
    bounds_hold = []

    def report(start, end, count, true_latencies):
        bounds = clock.latencies(start, end, count)
        bounds_hold.append(all(b >= l - 1e-6 for b, l in zip(bounds, true_latencies)) or count == 4)
        controller.record(bounds, full=count == 4)

    out = simulate(arrivals, lambda: controller.ratio, report)
    fixed = simulate(arrivals, lambda: 1.0, lambda *a: None)
    by_phase = lambda rows, lo, hi: [r for r in rows if lo <= r[0] < hi]   # noqa: E731
    assert all(r == 1.0 for _, _, r in by_phase(out, 0, 20))               # low load: full model
    high = by_phase(out, 30, 40)                                            # settled part of the high phase
    assert max(r for _, _, r in high) < 1.0
    assert np.percentile([l for _, l, _ in high], 99) < 150.0
    assert np.percentile([l for _, l, _ in by_phase(fixed, 30, 40)], 99) > 150.0   # r = 1.0 alone would not
    assert by_phase(out, 55, 70)[-1][2] == 1.0                              # back to the full model after
    assert sum(bounds_hold) / len(bounds_hold) > 0.95                       # the clock's bound held (unsaturated)
