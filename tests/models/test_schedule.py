"""The keep-ratio schedule: one validation, one default, one stage formula, K per block.

Expected values are worked out by hand here (stage bounds round(depth * s / 4), K = floor(N * r**s)),
not by calling the schedule's own helpers.
"""
import dataclasses
import inspect

import pytest

from idlevit.models.schedule import (DEFAULT_KEEP_RATIO, KeepSchedule, block_keep_tokens, check_keep_ratio,
                                     stage_bounds, tokens_to_keep)


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1, float("nan"), float("inf"), "2"])
def test_out_of_range_ratio_is_refused_with_one_text(bad):
    with pytest.raises(ValueError, match=r"outside \(0, 1\]: pick a value such as 0.7"):
        check_keep_ratio(bad)
    with pytest.raises(ValueError, match=r"outside \(0, 1\]"):
        KeepSchedule(bad)


def test_non_number_is_refused():
    with pytest.raises(ValueError, match="'abc' is not a number"):
        check_keep_ratio("abc")
    with pytest.raises(ValueError, match="not a number"):
        KeepSchedule(None)


def test_valid_ratio_comes_back_as_float():
    assert check_keep_ratio("0.25") == 0.25 and isinstance(check_keep_ratio(1), float)
    assert KeepSchedule("0.5").keep_ratio == 0.5


def test_per_block_ratios_are_checked_when_made():
    with pytest.raises(ValueError, match=r"per-block keep ratio 2 is outside \(0, 1\]"):
        KeepSchedule(0.7, [1.0, 2.0])
    assert KeepSchedule(0.7, [1.0, 0.5]).keep_ratios == (1.0, 0.5)


def test_schedule_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        KeepSchedule(0.5).keep_ratio = 0.9


def test_one_default_everywhere():
    import timm
    from idlevit.cli.common import ArgumentParser, add_model_args
    from idlevit.factory import create_idlevit
    from idlevit.training.config import TrainConfig
    assert DEFAULT_KEEP_RATIO == 0.7 and KeepSchedule().keep_ratio == 0.7
    assert inspect.signature(create_idlevit).parameters["keep_ratio"].default == 0.7
    assert TrainConfig().keep_ratio == 0.7
    parser = ArgumentParser()
    add_model_args(parser)
    assert parser.parse_args([]).keep_ratio == 0.7
    model = timm.create_model("idlevit_deit_tiny_patch16_224", img_size=32, depth=4)
    assert model.keep_ratios[1] == 0.7


def test_deit_twelve_blocks_four_stages():
    r = 0.7
    assert KeepSchedule(r).block_ratios(12) == [1.0] * 3 + [r] * 3 + [r ** 2] * 3 + [r ** 3] * 3
    assert stage_bounds(12) == [0, 3, 6, 9, 12]


@pytest.mark.parametrize("depth,sizes", [
    (10, [2, 3, 3, 2]),   # bounds 0, round(2.5)=2, 5, round(7.5)=8, 10
    (6, [2, 1, 1, 2]),    # bounds 0, round(1.5)=2, 3, round(4.5)=4, 6
    (5, [1, 1, 2, 1]),    # bounds 0, round(1.25)=1, round(2.5)=2, round(3.75)=4, 5
    (16, [4, 4, 4, 4]),   # LV-ViT-S
])
def test_depth_splits_into_four_stages(depth, sizes):
    ratios = KeepSchedule(0.5).block_ratios(depth)
    expected = [1.0] * sizes[0] + [0.5] * sizes[1] + [0.25] * sizes[2] + [0.125] * sizes[3]
    assert ratios == expected


def test_deit_small_k_per_block_at_0_7():
    # 196 * 0.7 = 137.2, 196 * 0.49 = 96.04, 196 * 0.343 = 67.228
    assert KeepSchedule(0.7).block_tokens(12, 196) == [None] * 3 + [137] * 3 + [96] * 3 + [67] * 3


def test_k_survives_float_error_in_r_power_s():
    # 0.7 ** 2 is 0.48999999999999994 in floats: 100 * it must still give 49, not 48
    assert KeepSchedule(0.7).block_tokens(4, 100) == [None, 70, 49, 34]


def test_k_is_from_the_total_and_at_least_one():
    assert KeepSchedule(0.5).block_tokens(4, 196) == [None, 98, 49, 24]
    assert KeepSchedule(0.01).block_tokens(4, 16) == [None, 1, 1, 1]
    assert tokens_to_keep(16, 1.0) is None


def test_keep_ratio_one_is_the_plain_backbone():
    assert KeepSchedule(1.0).block_tokens(12, 196) == [None] * 12


def test_explicit_ratios_replace_the_stages():
    schedule = KeepSchedule(0.7, [1.0, 0.5, 0.25])
    assert schedule.block_ratios(3) == [1.0, 0.5, 0.25]
    assert schedule.block_tokens(3, 16) == [None, 8, 4]
    assert schedule.staged_ratio is None
    with pytest.raises(ValueError, match="has 3 entries but the model has 4 blocks: give one ratio per block"):
        schedule.block_ratios(4)


def test_stage_tokens_feed_an_elastic_file():
    assert KeepSchedule(0.7).stage_tokens(196) == [137, 96, 67]
    assert KeepSchedule(1.0).stage_tokens(196) == [196, 196, 196]


def test_block_keep_tokens_spreads_stage_k_over_blocks():
    assert block_keep_tokens(12, (5, 6, 7)) == [None] * 3 + [5] * 3 + [6] * 3 + [7] * 3
    with pytest.raises(ValueError, match="give one K per stage"):
        block_keep_tokens(12, (5, 6))


def test_of_block_ratios_recovers_the_base_ratio():
    r = 0.6
    staged = KeepSchedule.of_block_ratios([1.0] * 3 + [r] * 3 + [r ** 2] * 3 + [r ** 3] * 3)
    assert staged == KeepSchedule(r) and staged.staged_ratio == r
    explicit = KeepSchedule.of_block_ratios([1.0, 0.9, 0.5, 0.5])
    assert explicit.staged_ratio is None and explicit.keep_ratio == 0.9   # the first stage-1 block's ratio
    assert explicit.block_ratios(4) == [1.0, 0.9, 0.5, 0.5]
    assert KeepSchedule.of_block_ratios([1.0] * 4).staged_ratio == 1.0
