import numpy as np
import pytest
import torch
from torch import nn

from training.loop import Validation, descend, fit, mean_parts


def _counting_run(scores: list[float], *, patience: int, min_epochs: int = 1) -> tuple[nn.Linear, list[float], object]:
    """A module whose weight is set to the epoch number; validation returns ``scores[epoch - 1]``."""
    module = nn.Linear(1, 1, bias=False)
    epoch = {"n": 0}
    seen: list[float] = []

    def train_epoch() -> dict[str, float]:
        epoch["n"] += 1
        with torch.no_grad():
            module.weight.fill_(epoch["n"])
        return {"loss": float(epoch["n"])}

    def validate() -> Validation[int]:
        score = scores[epoch["n"] - 1]
        seen.append(score)
        return Validation(score, {"val": score}, epoch["n"])

    result = fit(module, epochs=len(scores), patience=patience, train_epoch=train_epoch, validate=validate,
                 desc="test", progress=False, min_epochs=min_epochs)
    return module, seen, result


def test_fit_keeps_the_best_epoch_and_stops_after_patience():
    module, seen, result = _counting_run([0.1, 0.5, 0.3, 0.4, 0.2, 0.9], patience=3)
    assert seen == [0.1, 0.5, 0.3, 0.4, 0.2]  # three epochs without beating 0.5, then stop before the sixth
    assert result.best_epoch == 2 and result.best.detail == 2 and result.best.score == 0.5
    assert module.weight.item() == 2.0  # the best epoch's weights are back
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5]
    assert result.history[1] == {"epoch": 2, "loss": 2.0, "val": 0.5}


def test_ties_do_not_replace_the_best_epoch():
    module, _, result = _counting_run([0.5, 0.5, 0.5], patience=5)
    assert result.best_epoch == 1 and module.weight.item() == 1.0


def test_a_nan_score_never_becomes_best():
    module, _, result = _counting_run([0.2, float(np.nan), 0.1], patience=5)
    assert result.best_epoch == 1 and module.weight.item() == 1.0


def test_no_epoch_before_min_epochs_is_kept_and_patience_counts_from_there():
    module, seen, result = _counting_run([0.9, 0.8, 0.3, 0.5, 0.4, 0.2, 0.1, 0.6], patience=2, min_epochs=3)
    assert result.best_epoch == 4 and module.weight.item() == 4.0  # 0.9 and 0.8 came too early
    assert len(seen) == 6  # epochs 5 and 6 did not beat 0.5: stop
    _, _, short = _counting_run([0.9, 0.1], patience=2, min_epochs=5)
    assert short.best_epoch == 2  # fewer epochs than min_epochs: the last one


def test_descend_takes_one_step_down_and_returns_the_loss_before_it():
    weight = torch.nn.Parameter(torch.tensor([3.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    value = descend(optimizer, (weight**2).sum())
    assert value == 9.0
    assert weight.item() == pytest.approx(3.0 - 0.1 * 6.0)
    assert descend(optimizer, (weight**2).sum()) == pytest.approx(2.4**2)


def test_average_weights_is_an_exponential_moving_average_of_the_parameters():
    from training.loop import average_weights

    model, average = nn.Linear(2, 1), nn.Linear(2, 1)
    start = average.weight.detach().clone()
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(3):
        average_weights(average, model, decay=0.5)
    # a = 0.5^3 a0 + (1 - 0.5^3) * 1 after three steps towards a constant model
    torch.testing.assert_close(average.weight, 0.125 * start + 0.875 * torch.ones_like(start))
    assert torch.equal(model.weight, torch.ones_like(model.weight))  # the trained weights are not touched


def test_mean_parts_averages_each_part_over_the_steps_that_have_it():
    parts = [{"loss": 1.0, "domain": 0.6}, {"loss": 3.0}, {"loss": 2.0, "domain": 0.8}]
    assert mean_parts(parts) == pytest.approx({"loss": 2.0, "domain": 0.7})
    assert mean_parts([]) == {}
