import pytest

from idlevit.engines.batch_profile import BatchProfile, profile_to_json
from idlevit.engines.sizes import format_size, parse_size
from idlevit.errors import UserError


@pytest.mark.parametrize("text,expected", [("4GiB", 4 << 30), ("4G", 4 << 30), ("4GB", 4 * 10 ** 9),
                                           ("512MiB", 512 << 20), ("1.5g", 3 << 29), ("1024", 1024),
                                           (" 2 TiB ", 2 << 40), ("64kib", 64 << 10)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "4XB", "-1GiB", "0", "4 Gigs"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="4GiB"):
        parse_size(text)


def test_format_size_round_trips():
    assert format_size(4 << 30) == "4GiB" and parse_size(format_size(3 << 29)) == 3 << 29


def test_profile_shapes_replace_batch_only():
    shapes = BatchProfile(1, 8, 64).shapes(("batch", 3, 224, 224))
    assert shapes == ((1, 3, 224, 224), (8, 3, 224, 224), (64, 3, 224, 224))
    assert profile_to_json("input", shapes) == {"input": {"min": [1, 3, 224, 224], "opt": [8, 3, 224, 224],
                                                          "max": [64, 3, 224, 224]}}
    assert BatchProfile(2, 4, 8).contains(8) and not BatchProfile(2, 4, 8).contains(1)


@pytest.mark.parametrize("args", [(0, 1, 1), (4, 2, 8), (1, 16, 8)])
def test_profile_must_be_ordered(args):
    with pytest.raises(UserError, match="--min-batch <= --opt-batch <= --max-batch"):
        BatchProfile(*args)


def test_profile_needs_fixed_image_size():
    with pytest.raises(UserError, match="fixed image size"):
        BatchProfile().shapes(("batch", 3, "height", 224))
