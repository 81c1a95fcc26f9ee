"""ElasticKeep: K per idle stage from a ratio or per-stage K, range checks in one line, the keep-input feed."""
import numpy as np
import pytest

from idlevit.errors import UserError
from idlevit.models.schedule import KeepSchedule
from idlevit.onnx_file.elastic import KEEP_INPUT_NAMES, ElasticKeep, is_keep_input, stage_tokens_of
from tests.onnx_file.test_metadata import _meta


def test_engine_profile_narrows_the_accepted_k():
    spec = ElasticKeep.full(196, 0.7).narrowed({"keep_tokens.1": (100, 160), "keep_tokens.2": (50, 120),
                                                "keep_tokens.3": (20, 90)})
    assert spec.stage_tokens(0.7) == tuple(KeepSchedule(0.7).stage_tokens(196)) == (137, 96, 67)
    with pytest.raises(UserError, match="keep ratio 0.3 gives K = 58 for keep_tokens.1, outside 100..160"):
        spec.stage_tokens(0.3)
    assert 0.5 < spec.lowest_ratio() < 0.6


def test_feed_carries_k_as_input_lengths_and_reads_back():
    spec = ElasticKeep.full(196, 0.7)
    feed = spec.feed()
    assert list(feed) == list(KEEP_INPUT_NAMES) and all(v.dtype == np.float32 for v in feed.values())
    assert stage_tokens_of(feed) == (137, 96, 67) and stage_tokens_of({"input": None}) is None
    assert stage_tokens_of(spec.feed(keep_tokens=(150, 100, 50))) == (150, 100, 50)
    with pytest.raises(UserError, match="feed lacks keep_tokens.3"):
        stage_tokens_of({n: feed[n] for n in KEEP_INPUT_NAMES[:2]})
    with pytest.raises(UserError, match="not both"):
        spec.stage_tokens(0.7, (1, 1, 1))
    with pytest.raises(UserError, match="2 K values given for 3 idle stages"):
        spec.stage_tokens(keep_tokens=(1, 1))
    assert is_keep_input("keep_tokens.2") and not is_keep_input("input")


def test_from_metadata_needs_the_elastic_keys():
    spec = ElasticKeep.from_metadata(_meta(elastic=True, keep_token_range=[1, 196], keep_ratio=0.7))
    assert spec.ranges == ((1, 196),) * 3 and spec.default_ratio == 0.7
    with pytest.raises(UserError, match="no elastic metadata: re-export it with idle-export --elastic"):
        ElasticKeep.from_metadata(_meta(), "m.onnx")
