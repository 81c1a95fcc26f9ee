"""Distillation objective: KL, feature MSE, soft-target CE and the cut-loss wiring."""
import pytest
import torch
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from idlevit.models import TokenCutLoss
from idlevit.training.losses import DistillationLoss, classification_loss, distillation_kl, feature_mse
from tests.conftest import tiny_vit


def test_kl_is_zero_for_identical_logits_and_matches_the_definition():
    s, t = torch.randn(6, 10), torch.randn(6, 10)
    assert distillation_kl(s, s).abs().item() < 1e-6
    p_t = t.softmax(-1)
    expected = (p_t * (p_t.log() - s.log_softmax(-1))).sum(-1).mean()   # KL(teacher || student), batchmean
    assert torch.allclose(distillation_kl(s, t), expected, atol=1e-6)
    assert distillation_kl(s, t) > 0


def test_feature_mse_compares_directions_only():
    a, b = torch.randn(4, 16), torch.randn(4, 16)
    assert feature_mse(a, 3.0 * a).item() < 1e-10                  # same direction, any length
    expected = ((F.normalize(a, dim=-1) - F.normalize(b, dim=-1)) ** 2).mean()
    assert torch.allclose(feature_mse(a, b), expected)
    assert torch.allclose(feature_mse(a, -a), torch.tensor(4.0 / 16))  # opposite unit vectors: |2u|^2 / C


def test_classification_loss_follows_mixup_and_smoothing():
    assert isinstance(classification_loss(True, 0.1), SoftTargetCrossEntropy)
    assert isinstance(classification_loss(False, 0.1), LabelSmoothingCrossEntropy)
    assert isinstance(classification_loss(False, 0.0), torch.nn.CrossEntropyLoss)


@pytest.mark.parametrize("part", ["paper", "inter", "intra"])
def test_total_is_the_weighted_sum_and_cut_loss_comes_from_the_masked_forward(part):
    student, teacher = tiny_vit(keep_ratio=0.5).train(), tiny_vit(keep_ratio=1.0)
    x, y = torch.randn(3, 3, 32, 32), torch.tensor([1, 2, 3])
    out = student.forward_masked(x)
    with torch.no_grad():
        t = teacher.forward_masked(x)
    loss = DistillationLoss(alpha=5, beta=500, theta=20, cut_loss=part)
    terms = loss(out.logits, out.features, out.attn_maps, out.masks, y, t.logits, t.features)
    assert len(out.attn_maps) == 3                                   # blocks 1-3 idle
    assert torch.allclose(terms.cut, TokenCutLoss(part)(out.attn_maps, out.masks))
    assert terms.cut > 0
    assert torch.allclose(terms.ce, F.cross_entropy(out.logits, y))
    assert torch.allclose(terms.total, terms.ce + 5 * terms.kl + 500 * terms.feature + 20 * terms.cut)
    terms.total.backward()
    assert student.blocks[1].attn.qkv.weight.grad.abs().sum() > 0


def test_student_equal_to_teacher_has_no_distillation_loss():
    model = tiny_vit(keep_ratio=1.0)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    out = model.forward_masked(x)
    terms = DistillationLoss(cut_loss="paper")(out.logits, out.features, out.attn_maps, out.masks, y,
                                              out.logits, out.features)
    assert terms.kl.abs() < 1e-6 and terms.feature.abs() < 1e-10 and terms.cut == 0   # r = 1: no idle block
    assert torch.allclose(terms.total, terms.ce, atol=1e-5)


def test_zero_weights_need_no_teacher_and_cut_none_is_zero():
    student = tiny_vit(keep_ratio=0.5)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    out = student.forward_masked(x)
    loss = DistillationLoss(alpha=0, beta=0, theta=20, cut_loss="none")
    assert not loss.needs_teacher
    terms = loss(out.logits, out.features, out.attn_maps, out.masks, y)
    assert terms.cut == 0 and terms.kl == 0 and terms.feature == 0
    assert torch.allclose(terms.total, terms.ce)
