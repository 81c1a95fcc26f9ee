"""Student (IdleViT or the pruning baseline) and its frozen teacher."""
import pytest
import torch

from idlevit.errors import UserError
from idlevit.models.pruning import PruneViTMixin
from idlevit.training.student import MaskedForward, build_student, build_teacher, teacher_outputs
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


def test_teacher_is_the_students_backbone_frozen(tmp_path):
    cfg = tiny_config(tmp_path, drop_path=0.1)
    student, _ = build_student(cfg, 10, warn_random=False)
    teacher = build_teacher(cfg, 10)
    s, t = student.state_dict(), teacher.state_dict()
    assert all(torch.equal(s[k], t[k]) for k in s)
    assert student.keep_tokens == [None, 8, 4, 2] and teacher.keep_tokens == [None] * 4
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert student.training


def test_prune_variant_keeps_the_schedule_and_the_weights(tmp_path):
    idle, idle_source = build_student(tiny_config(tmp_path), 10, warn_random=False)
    pruned, source = build_student(tiny_config(tmp_path, variant="prune"), 10, warn_random=False)
    assert isinstance(pruned, PruneViTMixin) and pruned.training
    assert pruned.prune_tokens == [None, 8, 4, 2]                 # 16 image tokens at r = 0.5
    assert source.keep_ratios == idle_source.keep_ratios == [1.0, 0.5, 0.25, 0.125]
    s, p = idle.state_dict(), pruned.state_dict()
    assert s.keys() == p.keys() and all(torch.equal(s[k], p[k]) for k in s)


def test_bad_per_block_ratios_are_one_user_error(tmp_path):
    with pytest.raises(UserError, match="keep_ratios has 2 entries but the model has 4 blocks"):
        build_student(tiny_config(tmp_path, variant="prune", keep_ratios=[1.0, 0.5]), 10, warn_random=False)


def test_masked_forward_is_a_tuple_of_the_training_outputs(tmp_path):
    student, _ = build_student(tiny_config(tmp_path), 10, warn_random=False)
    student.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits, features, maps, masks = MaskedForward(student)(x)
        torch.testing.assert_close(logits, student(x), atol=1e-5, rtol=1e-5)
    assert features.shape == (2, 32) and len(maps) == len(masks) == 3
    assert [int(m[0].sum()) for m in masks] == [9, 5, 3]          # [CLS] + K per idle block


def test_teacher_outputs_are_none_without_a_teacher_and_detached_with_one(tmp_path):
    cfg = tiny_config(tmp_path)
    assert teacher_outputs(None, torch.randn(1, 3, 32, 32)) == (None, None)
    logits, features = teacher_outputs(build_teacher(cfg, 10), torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10) and features.shape == (2, 32) and not logits.requires_grad
