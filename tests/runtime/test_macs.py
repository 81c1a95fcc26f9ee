import json

import pytest

from idlevit.cli.runtime import main
from idlevit.factory import create_idlevit
from idlevit.runtime.macs import analytic_macs, count_executed_macs, mac_report

PAPER_TABLE1_DEIT_S = {1.0: 4.6, 0.9: 4.0, 0.8: 3.5, 0.7: 3.1, 0.6: 2.7, 0.5: 2.4, 0.4: 2.1, 0.3: 1.9}


@pytest.mark.parametrize("ratio,gmacs", sorted(PAPER_TABLE1_DEIT_S.items()))
def test_paper_convention_matches_table1(ratio, gmacs):
    model, _ = create_idlevit("idlevit_deit_small_patch16_224", ratio, warn_random=False)
    assert round(analytic_macs(model, "paper") / 1e9, 1) == gmacs


@pytest.mark.parametrize("ratio", [1.0, 0.7, 0.4])
def test_executed_count_matches_cost_model(ratio):
    """FlopCounterMode on the real forward agrees with SPEC 1.7 (scoring adds ~0.1 %)."""
    model, _ = create_idlevit("idlevit_deit_small_patch16_224", ratio, warn_random=False)
    measured = count_executed_macs(model, 224)
    assert measured == pytest.approx(analytic_macs(model, "executed"), rel=2e-3)
    if ratio < 1.0:
        assert measured < analytic_macs(model, "paper")


def test_cli_json(capsys):
    assert main(["macs", "--model", "idlevit_deit_small_patch16_224", "--keep-ratio", "0.7", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"model", "keep_ratio", "gmacs_executed", "gmacs_paper", "tokens_per_block"} <= set(out)
    assert out["tokens_per_block"] == [197] * 3 + [138] * 3 + [97] * 3 + [68] * 3
    assert round(out["gmacs_paper"], 1) == 3.1
    assert 2.95 < out["gmacs_executed"] < 3.05


def test_cli_table_and_bad_ratio(capsys):
    assert main(["macs", "--model", "idlevit_deit_tiny_patch16_224", "--keep-ratio", "0.5"]) == 0
    assert "paper Table 1 convention" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["macs", "--keep-ratio", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "outside (0, 1]" in err


def test_report_tokens_tiny():
    model, _ = create_idlevit("idlevit_deit_tiny_patch16_224", 0.5, warn_random=False)
    rep = mac_report(model, "t", 0.5, 224)
    assert rep.tokens_per_block == [197] * 3 + [99] * 3 + [50] * 3 + [25] * 3
