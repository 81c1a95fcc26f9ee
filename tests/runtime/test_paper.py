from idlevit.runtime.paper import PAPER_DEIT_S_TABLE1, PAPER_LVVIT_S_TABLE1, paper_table1


def test_table_per_model():
    assert paper_table1("idlevit_deit_small_patch16_224") is PAPER_DEIT_S_TABLE1
    assert paper_table1("idlevit_lvvit_s", 224) is PAPER_LVVIT_S_TABLE1
    assert paper_table1("idlevit_lvvit_s", 288) is None
    assert paper_table1("idlevit_lvvit_m") is None


def test_lvvit_speedups_from_published_throughput():
    assert PAPER_LVVIT_S_TABLE1[1.0] == (6.6, 1.0)
    assert abs(PAPER_LVVIT_S_TABLE1[0.5][1] - 1131.4 / 700.7) < 1e-12
