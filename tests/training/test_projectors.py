"""Projector-ensemble feature distillation: the ensemble, the cosine distance and their place in the objective."""
import pytest
import torch
import torch.nn.functional as F

from idlevit.training.config import FEATURE_KDS, PROJECTOR_ACTS
from idlevit.training.losses import FEATURE_LOSSES, DistillationLoss
from idlevit.training.projectors import ACTIVATIONS, ProjectorEnsemble, build_projectors, cosine_distance
from tests.conftest import tiny_vit


def test_the_ensemble_is_the_mean_of_its_activated_projections():
    torch.manual_seed(0)
    f = torch.randn(5, 8)
    relu, linear = ProjectorEnsemble(8, 6, count=4, activation="relu"), ProjectorEnsemble(8, 6, 4, "none")
    linear.load_state_dict(relu.state_dict())
    by_hand = [f @ p.weight.T + p.bias for p in relu.projectors]
    assert torch.allclose(relu(f), sum(y.clamp(min=0) for y in by_hand) / 4, atol=1e-6)
    assert torch.allclose(linear(f), sum(by_hand) / 4, atol=1e-6)
    assert relu(f).min() >= 0 and linear(f).min() < 0     # a ReLU ensemble cannot point into negative entries
    assert relu(f).shape == (5, 6) and len(relu.projectors) == 4


def test_cosine_distance_is_one_minus_cos_averaged_over_the_batch():
    a, b = torch.randn(6, 16), torch.randn(6, 16)
    assert cosine_distance(a, 2.5 * a).abs() < 1e-6             # same direction, any length
    assert torch.allclose(cosine_distance(a, -a), torch.tensor(2.0))
    expected = (1 - (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)).mean()
    assert torch.allclose(cosine_distance(a, b), expected, atol=1e-6)


def test_every_setting_has_its_loss_and_activation_and_bad_ones_are_refused():
    assert set(FEATURE_LOSSES) == set(FEATURE_KDS) and set(ACTIVATIONS) == set(PROJECTOR_ACTS)
    with pytest.raises(ValueError, match="feature_kd 'l1' is not one of mse, projector-ensemble"):
        DistillationLoss(feature_kd="l1")
    with pytest.raises(ValueError, match="at least one projector"):
        ProjectorEnsemble(4, 4, count=0)
    with pytest.raises(ValueError, match="'gelu' is not one of relu, none"):
        ProjectorEnsemble(4, 4, activation="gelu")


@pytest.mark.parametrize("activation", ["relu", "none"])
def test_the_objective_uses_the_projected_feature_and_trains_the_projectors(activation):
    student, teacher = tiny_vit(keep_ratio=0.5).train(), tiny_vit(keep_ratio=1.0, seed=1)
    projectors = build_projectors(student, teacher, 3, activation, seed=0)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    out = student.forward_masked(x)
    with torch.no_grad():
        t = teacher.forward_masked(x)
    projected = projectors(out.features)
    terms = DistillationLoss(alpha=5, beta=25, theta=20, feature_kd="projector-ensemble")(
        out.logits, projected, out.attn_maps, out.masks, y, t.logits, t.features)
    assert torch.allclose(terms.feature, cosine_distance(projected, t.features))
    assert 0 < terms.feature < 2
    assert torch.allclose(terms.total, terms.ce + 5 * terms.kl + 25 * terms.feature + 20 * terms.cut)
    terms.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projectors.parameters())
    assert student.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_projectors_depend_on_the_seed_alone():
    student = tiny_vit()
    torch.manual_seed(5)
    a = build_projectors(student, student, 3, "relu", seed=7)
    draw = torch.rand(3)
    torch.manual_seed(99)                     # another global RNG state: same projectors, RNG left alone
    b = build_projectors(student, student, 3, "relu", seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), draw)
    c = build_projectors(student, student, 3, "relu", seed=8)
    assert not torch.equal(a.projectors[0].weight, c.projectors[0].weight)
    assert a.projectors[0].weight.shape == (32, 32)
