import numpy as np
import torch

from models.config import EncoderConfig
from models.encoders import pad
from training.multitask import (
    LabelledSet,
    MultitaskConfig,
    MultitaskNet,
    distillation_loss,
    evaluate,
    logits,
    train_multitask,
)

TINY = MultitaskConfig(epochs=40, patience=40, batch_size=8, trunk=EncoderConfig(kind="mlp", hidden=8, layers=(16,)))

KD = {"kd_weight": TINY.kd_weight, "temperature": TINY.temperature}

def _set(name: str, taxonomy: str, classes: int, seed: int) -> LabelledSet:
    """Frames whose mean encodes the class: class c sits at +3 on feature c."""
    rng = np.random.default_rng(seed)
    features, labels = {}, {}
    for split, n in (("train", 40), ("val", 12), ("test", 12)):
        y = np.arange(n) % classes
        features[split] = [(rng.normal(size=(5, 6)) + 3 * np.eye(6)[c]).astype(np.float32) for c in y]
        labels[split] = y.astype(np.int64)
    return LabelledSet(name, taxonomy, features, labels)


def test_one_net_learns_two_taxonomies_with_and_without_distillation():
    sets = [_set("fourq", "quadrant", 4, 0), _set("mirex", "mirex_cluster", 5, 1)]
    student = train_multitask(sets, TINY)
    assert all(evaluate(student, d, "test").macro_f1 >= 0.9 for d in sets)
    soft = {d.name: logits(student, d.features["train"], d.taxonomy) for d in sets}
    distilled = train_multitask(sets, TINY, teachers=soft)
    assert all(evaluate(distilled, d, "test").accuracy >= 0.9 for d in sets)


def test_a_batch_updates_only_the_head_its_labels_inform():
    data = _set("fourq", "quadrant", 4, 0)
    model = MultitaskNet(6, ["mirex_cluster", "quadrant"], TINY.trunk)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = distillation_loss(model(*pad(data.features["train"][:8]), "quadrant"),
                             torch.from_numpy(data.labels["train"][:8]), None, **KD)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    assert not torch.equal(before["heads.quadrant.weight"], after["heads.quadrant.weight"])
    assert torch.equal(before["heads.mirex_cluster.weight"], after["heads.mirex_cluster.weight"])


def test_distillation_with_the_teachers_own_logits_keeps_the_loss_at_its_hard_part_plus_entropy():
    student = torch.tensor([[2.0, 0.0, -1.0, 0.5]])
    target = torch.tensor([0])
    hard = distillation_loss(student, target, None, **KD)
    same = distillation_loss(student, target, student.clone(), **KD)  # KL(student || itself) = 0
    assert torch.isclose(same, (1 - TINY.kd_weight) * hard)
