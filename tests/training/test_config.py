"""Fine-tuning settings: the paper's defaults, what --resume may change, when mixup is on."""
import dataclasses

from idlevit.training.config import RESUME_MAY_CHANGE, TrainConfig, resume_keys


def test_defaults_are_the_papers_recipe():
    cfg = TrainConfig()
    assert (cfg.keep_ratio, cfg.keep_ratios, cfg.variant) == (0.7, None, "idle")
    assert (cfg.alpha, cfg.beta, cfg.theta, cfg.cut_loss) == (5.0, 500.0, 20.0, "paper")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.min_lr) == (30, 1024, 2e-5, 2e-6)


def test_resume_keys_are_every_setting_but_where_and_how_it_reports():
    keys = resume_keys()
    assert set(keys) | set(RESUME_MAY_CHANGE) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert not set(keys) & {"output", "resume", "progress"}
    assert {"keep_ratio", "keep_ratios", "lr", "seed", "workers", "amp"} <= set(keys)


def test_mixup_is_active_only_with_augmentation_and_a_mix():
    assert TrainConfig().mixup_active
    assert not TrainConfig(no_aug=True).mixup_active
    assert not TrainConfig(mixup=0.0, cutmix=0.0).mixup_active
    assert not TrainConfig(mixup_prob=0.0).mixup_active
    assert TrainConfig(mixup=0.0, cutmix=1.0).mixup_active
