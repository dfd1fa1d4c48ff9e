from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.encoders import CrossModalModel, pad
from models.manifest import read_manifest
from tests.training.conftest import TINY_MODEL, TINY_TRAIN
from training.evaluate import embed
from training.features import Item, load_items
from training.loop import seed_everything
from training.splits import train_val
from training.train import batches, crop, kind_alignment_loss, train_model


@pytest.fixture(scope="module")
def items(tiny_corpus: Path) -> tuple[list[Item], list[Item]]:
    train, val = train_val(read_manifest(tiny_corpus))
    return (load_items(tiny_corpus, train, TINY_MODEL.frontend, workers=1, progress=False),
            load_items(tiny_corpus, val, TINY_MODEL.frontend, workers=1, progress=False))


def test_a_two_epoch_cpu_run_finishes_and_records_history(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    result = train_model(config, train, val, TINY_TRAIN, progress=False)
    assert 1 <= result.best_epoch <= 2 and len(result.history) == 2
    assert all(np.isfinite(row["loss"]) for row in result.history)
    assert not result.model.training
    assert not torch.equal(result.model.music.align.weight, torch.eye(4))  # CCA alignment was fitted


def test_training_is_deterministic_by_seed(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    runs = [train_model(config, train, val, replace(TINY_TRAIN, seed=s), progress=False) for s in (3, 3, 4)]
    music = [embed(r.model, val)[0].E for r in runs]
    np.testing.assert_array_equal(music[0], music[1])
    assert not np.array_equal(music[0], music[2])


def test_crop_takes_the_same_window_from_both_sequences():
    item = Item("x", np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(20, dtype=np.float32).reshape(10, 2),
                np.zeros(2, np.float32), "dynamic", "train")
    lengths = set()
    for seed in range(30):
        features, va = crop(item, 6, np.random.default_rng(seed))
        assert np.array_equal(features, va) and 2 <= features.shape[0] <= 6
        lengths.add(features.shape[0])
    assert lengths == {2, 3, 4, 5, 6}
    assert crop(item, 0, np.random.default_rng(0))[0].shape == (10, 2)


def test_cca_needs_batches_larger_than_d(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1], d=16)
    with pytest.raises(ValueError, match="batches of more than d = 16 pairs"):
        train_model(config, train, val, TINY_TRAIN, progress=False)


def test_batches_drop_a_tiny_remainder():
    rng = np.random.default_rng(0)
    sizes = [len(b) for b in batches(list(range(70)), size=32, rng=rng)]  # type: ignore[arg-type]
    assert sizes == [32, 32]
    assert sorted(len(b) for b in batches(list(range(50)), size=32, rng=rng)) == [18, 32]  # type: ignore[arg-type]


def test_identical_emotion_windows_are_not_negatives():
    from training.train import distinct_emotions

    q1 = np.tile([0.5, 0.5], (5, 1)).astype(np.float32)
    ramp = np.linspace([-1, 0], [1, 0], 5).astype(np.float32)
    allowed = distinct_emotions([q1, q1.copy(), ramp]).numpy()
    assert not allowed[0, 1] and not allowed[1, 0] and allowed[0, 2] and allowed[2, 1]


def test_the_query_lam_criterion_weighs_mrr_against_va_agreement(items):
    from training.evaluate import evaluate_model
    from training.train import QUERY_LAMS, choose_query_lam

    train, val = items
    model = train_model(TINY_MODEL, train, val, TINY_TRAIN, progress=False).model
    chosen = {w: choose_query_lam(model, train, QUERY_LAMS, weight=w) for w in (0.0, 1e6)}
    assert model.config.query_lam == chosen[1e6]

    def measured(lam: float) -> tuple[float, float]:
        from dataclasses import replace as set_lam

        from training.train import fit_readout_temperature

        model.config = set_lam(model.config, query_lam=lam)
        fit_readout_temperature(model, train)
        metrics = evaluate_model(model, train, lam=lam)
        assert metrics.va_agreement is not None
        return metrics.mean_mrr, metrics.va_agreement.top_k_distance

    table = {lam: measured(lam) for lam in QUERY_LAMS}
    assert table[chosen[0.0]][0] == max(mrr for mrr, _ in table.values())  # weight 0: MRR alone
    assert table[chosen[1e6]][1] == min(distance for _, distance in table.values())  # huge weight: distance alone


def test_a_dimensional_head_learns_va_and_gives_the_reading(items):
    from models.encoders import pad
    from models.inference import Embedder

    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1], dimensional=True)
    result = train_model(config, train, val, replace(TINY_TRAIN, epochs=8, patience=8), progress=False)
    assert all(np.isfinite(row["va_nll"]) for row in result.history)
    assert result.history[-1]["va_nll"] < result.history[0]["va_nll"]
    embedder = Embedder(result.model)
    with torch.no_grad():
        head_mean, _ = result.model.music.valence_arousal(*pad([train[0].features]))
    assert np.allclose(embedder.read_features([train[0].features]).mean, head_mean.numpy(), atol=1e-6)
    track = embedder.read_track(train[0].features)
    assert np.allclose(track.mean, track.curve.mean(axis=0))  # one reading: the mean of the head's curve


def test_the_dimensional_loss_fits_va_that_the_representation_holds():
    from training.train import dimensional_loss

    torch.manual_seed(0)
    model = CrossModalModel(replace(TINY_MODEL, n_features=5, dimensional=True))
    h = torch.randn(64, model.music.trunk.out_dim)
    va = [np.repeat(np.tanh(h[i, :2].numpy())[None] * 0.8, 3, axis=0) for i in range(64)]  # (3, 2) windows
    optimizer = torch.optim.Adam(model.music.dimensional.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        dimensional_loss(model, h, va).backward()
        optimizer.step()
    mean, logvar = model.music.dimensional(h)
    assert np.abs(mean.detach().numpy() - np.stack([w[0] for w in va])).mean() < 0.05
    assert logvar.mean().item() < -3  # confident where the target is exact


def test_renditions_of_a_piece_are_drawn_one_per_epoch(items, monkeypatch):
    import training.train as train_module

    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    louder = [replace(i, features=i.features + 1.0) for i in train]  # another rendition of each piece, same id
    seen: list[list[Item]] = []
    step = train_module._step

    def recording_step(model, batch, *args, **kwargs):
        seen.append(batch)
        return step(model, batch, *args, **kwargs)

    monkeypatch.setattr(train_module, "_step", recording_step)
    epochs = 4
    run = replace(TINY_TRAIN, epochs=epochs, patience=epochs, min_epochs=0, one_rendition=True)
    train_model(config, train + louder, val, run, progress=False)
    per_epoch = len(seen) // epochs
    for epoch in range(epochs):
        drawn = [i for batch in seen[epoch * per_epoch:(epoch + 1) * per_epoch] for i in batch]
        assert len({i.id for i in drawn}) == len(drawn) <= len(train)  # never two renditions of a piece
    trained_on = [i for batch in seen for i in batch]
    assert any(i.features is j.features for i in trained_on for j in louder)
    assert any(i.features is j.features for i in trained_on for j in train)

    seen.clear()
    train_model(config, train + louder, val, replace(run, one_rendition=False), progress=False)
    assert sum(len(b) for b in seen[:len(seen) // epochs]) > len(train)  # off: every rendition is an item


def test_draw_renditions_picks_each_rendition_in_turn():
    from training.train import draw_renditions, renditions

    def item(name: str, value: float) -> Item:
        return Item(name, np.full((3, 2), value, np.float32), np.zeros((3, 2), np.float32), np.zeros(2, np.float32),
                    "dynamic", "train")

    groups = renditions([item("a", 0), item("b", 0), item("a", 1), item("a", 2)])
    assert [[i.id for i in g] for g in groups] == [["a", "a", "a"], ["b"]]
    rng = np.random.default_rng(0)
    draws = [draw_renditions(groups, rng) for _ in range(60)]
    assert all([i.id for i in d] == ["a", "b"] for d in draws)
    assert {float(d[0].features[0, 0]) for d in draws} == {0.0, 1.0, 2.0}


def test_with_ema_decay_the_model_kept_is_the_moving_average_of_the_trained_weights(items, monkeypatch):
    import training.train as train_module

    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    snapshots: list[list[torch.Tensor]] = []
    step = train_module._step

    def recording_step(model, *args, **kwargs):
        parts = step(model, *args, **kwargs)
        snapshots.append([p.detach().clone() for p in model.parameters()])
        return parts

    monkeypatch.setattr(train_module, "_step", recording_step)
    epochs, decay = 3, 0.6
    run = replace(TINY_TRAIN, epochs=epochs, patience=epochs, min_epochs=epochs)  # keep the last epoch
    averaged = train_model(config, train, val, replace(run, ema_decay=decay), progress=False)
    trained = snapshots[:]
    seed_everything(run.seed)  # as train_model seeds the weights it starts from
    initial = [p.detach().clone() for p in CrossModalModel(config).parameters()]
    snapshots.clear()
    plain = train_model(config, train, val, run, progress=False)

    assert all(torch.equal(a, b) for a, b in zip(trained[-1], snapshots[-1], strict=True))  # same trajectory
    expected = initial
    for weights in trained:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights, strict=True)]
    for kept, want in zip(averaged.model.parameters(), expected, strict=True):
        torch.testing.assert_close(kept, want)
    assert not all(torch.equal(a, b) for a, b in zip(averaged.model.parameters(), plain.model.parameters(),
                                                     strict=True))
    assert not averaged.model.training and not torch.equal(averaged.model.music.align.weight, torch.eye(4))


def test_drop_features_sets_whole_dimensions_to_the_mean_and_keeps_the_spread():
    from training.train import drop_features

    rng = np.random.default_rng(0)
    features = rng.normal(2.0, 1.0, size=(50, 400)).astype(np.float32)
    mean = np.full(400, 2.0, np.float32)
    dropped = drop_features(features, mean, 0.25, rng)
    gone = np.all(dropped == mean, axis=0)
    assert 0.18 < gone.mean() < 0.32  # about a quarter of the dimensions, each over every frame
    kept = ~gone
    np.testing.assert_allclose(dropped[:, kept] - 2.0, (features[:, kept] - 2.0) / 0.75, atol=1e-5)
    assert dropped.dtype == np.float32


def test_feature_dropout_changes_what_the_model_trains_on(items, monkeypatch):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    runs = [train_model(config, train, val, replace(TINY_TRAIN, feature_dropout=p), progress=False) for p in (0, 0.5)]
    music = [embed(r.model, val)[0].E for r in runs]
    assert not np.array_equal(music[0], music[1])


def test_only_a_pieces_first_rendition_keeps_its_labels():
    from training.train import first_renditions_label

    def item(name: str, value: float) -> Item:
        return Item(name, np.full((3, 2), value, np.float32), np.zeros((3, 2), np.float32), np.zeros(2, np.float32),
                    "categorical", "train", {"quadrant": 1})

    own, other, varied = item("emopia-a", 0), item("emopia-b", 0), item("emopia-a", 1)
    taught = first_renditions_label([own, other, varied])
    assert [i.labels for i in taught] == [{"quadrant": 1}, {"quadrant": 1}, {}]
    assert taught[2].features is varied.features and varied.labels == {"quadrant": 1}  # the input is not changed


def test_later_renditions_teach_the_heads_nothing(items, monkeypatch):
    import training.train as train_module

    train, val = items
    labelled = [replace(i, labels={"quadrant": k % 4}) for k, i in enumerate(train)]
    louder = [replace(i, features=i.features + 1.0) for i in labelled]  # a second rendition of each piece
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1], taxonomies=("quadrant",))
    seen: list[list[Item]] = []
    loss = train_module.categorical_loss

    def recording_loss(model, h, batch, **kwargs):
        seen.append(batch)
        return loss(model, h, batch, **kwargs)

    monkeypatch.setattr(train_module, "categorical_loss", recording_loss)
    run = replace(TINY_TRAIN, one_rendition=True, heads_from_first_rendition=True)
    train_model(config, labelled + louder, [replace(i, labels={"quadrant": 0}) for i in val], run, progress=False)
    trained = [i for batch in seen for i in batch]
    assert any(i.features is j.features for i in trained for j in louder)  # the louder renditions trained
    assert all(not i.labels for i in trained if any(i.features is j.features for j in louder))
    assert all(i.labels for i in trained if any(i.features is j.features for j in labelled))


def test_a_rendition_partner_is_the_same_window_of_another_rendition():
    from training.train import rendition_partners, renditions

    def item(name: str, value: float, frames: int = 10) -> Item:
        features = np.arange(frames, dtype=np.float32)[:, None] + np.full((frames, 2), value, np.float32)
        return Item(name, features, np.zeros((frames, 2), np.float32), np.zeros(2, np.float32), "dynamic", "train")

    own, alone, varied, shorter = item("a", 0), item("b", 0), item("a", 100), item("a", 200, frames=5)
    pieces = {group[0].id: group for group in renditions([own, alone, varied, shorter])}
    rows, windows = rendition_partners([own, alone, varied], [(3, 7), (0, 4), (2, 8)], pieces,
                                       np.random.default_rng(0))
    assert rows == [0, 2]  # "b" has no other rendition
    assert windows[0][:, 0].tolist() in ([103, 104, 105, 106], [203, 204])  # frames 3-6, where the rendition has them
    assert windows[1][:, 0].tolist() in ([2, 3, 4, 5, 6, 7], [202, 203, 204])  # never the row's own rendition
    drawn = {tuple(rendition_partners([own], [(3, 7)], pieces, np.random.default_rng(s))[1][0][:, 0])
             for s in range(20)}
    assert drawn == {(103, 104, 105, 106), (203, 204)}


def test_the_consistency_loss_is_zero_for_equal_renditions_and_blind_to_scale():
    from training.train import rendition_consistency_loss

    torch.manual_seed(0)
    h, other = torch.randn(16, 8), torch.randn(16, 8)
    assert rendition_consistency_loss(h, h).item() == 0.0
    loss = rendition_consistency_loss(h, other).item()
    assert loss > 0.5
    assert rendition_consistency_loss(10 * h, 10 * other).item() == pytest.approx(loss, rel=1e-5)


def test_consistency_brings_a_pieces_renditions_together(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    shifted = [replace(i, features=i.features + np.float32(2.0) * np.sign(np.arange(i.features.shape[1]) % 2 - 0.5)
                       .astype(np.float32)) for i in train]  # another rendition of each piece: a timbre shift
    run = replace(TINY_TRAIN, epochs=12, patience=12, min_epochs=12, one_rendition=True)  # keeps the last epoch

    def gap(weight: float) -> float:
        model = train_model(config, train + shifted, val, replace(run, rendition_consistency=weight),
                            progress=False).model
        with torch.no_grad():
            a, b = (model.music.represent(*pad([i.features for i in side])) for side in (train, shifted))
        return float(((a - b) ** 2).sum(dim=1).mean() / torch.cat([a, b]).var(dim=0).sum())

    assert gap(5.0) < 0.5 * gap(0.0)


def test_fine_tuning_starts_from_the_given_model_and_keeps_its_feature_statistics(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    start = train_model(config, train, val, TINY_TRAIN, progress=False).model
    shifted = [replace(i, features=i.features + 5.0) for i in train]  # statistics of their own
    still = train_model(config, shifted, val, replace(TINY_TRAIN, lr=0.0, weight_decay=0.0), progress=False,
                        init=start).model
    kept = {k: v for k, v in start.state_dict().items() if ".align." not in k and k != "readout_temperature"}
    assert all(torch.equal(still.state_dict()[k], v) for k, v in kept.items())  # no step moved anything
    moved = train_model(config, shifted, val, TINY_TRAIN, progress=False, init=start).model
    assert torch.equal(moved.music.feature_mean, start.music.feature_mean)
    first = [next(iter(m.music.trunk.parameters())) for m in (moved, start)]
    assert not torch.equal(*first)  # steps did move it



def test_the_kind_gap_compares_recordings_and_renders_within_a_quadrant(items):
    train, _ = items
    happy, sad = np.array([0.5, 0.5], np.float32), np.array([-0.5, -0.5], np.float32)
    batch = [replace(train[k], id=f"4q-{k}", va_mean=happy) for k in range(2)] + \
        [replace(train[k], va_mean=happy) for k in range(2, 4)] + [replace(train[4], va_mean=sad)]
    assert [i.recorded for i in batch] == [True, True, False, False, False]
    h = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0], [0.0, 2.0], [50.0, 50.0]])
    # Q1: recordings' mean (2, 0), renders' (0, 1): squared distance 5; the lone sad render has no partner
    assert kind_alignment_loss(h, batch).item() == pytest.approx(5.0 / h.var(dim=0).sum().item(), rel=1e-5)
    assert kind_alignment_loss(10 * h, batch).item() == pytest.approx(kind_alignment_loss(h, batch).item(), rel=1e-5)
    assert kind_alignment_loss(h[2:], batch[2:]) is None  # renders only


def test_the_kind_alignment_brings_recordings_and_renders_together(items):
    train, val = items
    config = replace(TINY_MODEL, n_features=train[0].features.shape[1])
    half = len(train) // 2
    shift = np.float32(2.0) * np.sign(np.arange(train[0].features.shape[1]) % 2 - 0.5).astype(np.float32)
    mixed = [replace(i, id=f"4q-{i.id}", features=i.features + shift) for i in train[:half]] + train[half:]
    run = replace(TINY_TRAIN, epochs=30, patience=30, min_epochs=30)  # keeps the last epoch

    def gap(weight: float) -> float:
        """Squared distance between the two kinds' mean representations over the summed variance."""
        model = train_model(config, mixed, val, replace(run, kind_alignment=weight), progress=False).model
        with torch.no_grad():
            h = model.music.represent(*pad([i.features for i in mixed]))
        kind = torch.tensor([i.recorded for i in mixed])
        return float(((h[kind].mean(0) - h[~kind].mean(0)) ** 2).sum() / h.var(dim=0).sum())

    assert gap(5.0) < 0.5 * gap(0.0)
