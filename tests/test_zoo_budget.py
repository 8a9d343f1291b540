"""The zoo's budget: the time left split over the models left by weight, after their overheads."""
import pytest

from tinygen import zoo


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(zoo.time, "perf_counter", lambda: now[0])
    return now


def test_shares_follow_the_weights_and_reserve_the_overheads_and_the_pages(clock):
    names = ["bernoulli", "vae", "dcgan"]                       # weights 0.25, 1, 1.5
    budget = zoo._Budget(100.0, names)
    free = 100.0 - 3 * zoo.FIRST_OVERHEAD - zoo.PAGES_SECONDS
    assert budget.share("bernoulli") == pytest.approx(free * 0.25 / 2.75)
    clock[0] = 10.0                                            # bernoulli's run: 8 s training, 10 s in all
    budget.spent("bernoulli", {"wall_seconds": 10.0, "train_seconds": 8.0})
    free = 90.0 - 2 * 2.0 - zoo.PAGES_SECONDS                  # the measured overhead replaces the guess
    assert budget.share("vae") == pytest.approx(free * 1.0 / 2.5)
    clock[0] = 40.0
    budget.spent("vae", {"wall_seconds": 30.0, "train_seconds": 26.0})
    assert budget.share("dcgan") == pytest.approx(60.0 - 3.0 - zoo.PAGES_SECONDS)   # mean overhead (2 + 4) / 2


def test_the_sum_of_the_shares_and_overheads_stays_within_the_budget(clock):
    names = ["bernoulli", "fvsbn", "nade", "vae", "gan", "dcgan", "infogan"]
    budget = zoo._Budget(300.0, names)
    for name in names:                                         # each run uses its share and 2 s more
        seconds = budget.share(name)
        clock[0] += seconds + 2.0
        budget.spent(name, {"wall_seconds": seconds + 2.0, "train_seconds": seconds})
    assert clock[0] + zoo.PAGES_SECONDS <= 300.0 + 1e-9


def test_a_late_start_still_gives_each_model_a_second(clock):
    budget = zoo._Budget(1.0, ["vae", "gan"])
    assert budget.share("vae") == 1.0
