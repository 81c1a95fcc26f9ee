import pytest
import torch

from idlevit.models import TokenCutLoss, token_cut_loss


def _mask(n, selected):
    m = torch.zeros(1, n)
    m[0, selected] = 1.0
    return m


def test_perfectly_separated_map_gives_zero():
    # N = 5: S = {0 (CLS), 1, 2}, I = {3, 4}; S rows attend only within S, I rows within I.
    w = torch.tensor([[0.4, 0.3, 0.3, 0.0, 0.0],
                      [0.2, 0.5, 0.3, 0.0, 0.0],
                      [0.1, 0.1, 0.8, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 0.6, 0.4],
                      [0.0, 0.0, 0.0, 0.5, 0.5]]).unsqueeze(0)
    assert token_cut_loss(w, _mask(5, [0, 1, 2])).item() == pytest.approx(0.0, abs=1e-7)


def test_uniform_map_closed_form():
    # W_ij = 1/N. For i in S: sum_I W = |I|/N, sum_S W = |S|/N. For i in I: sum_{S\CLS} W = (|S|-1)/N.
    # inter = (|I|/N)^2 + ((|S|-1)/N)^2, intra = (1 - |S|/N)^2 = (|I|/N)^2.
    n, s = 10, 4
    i = n - s
    w = torch.full((2, n, n), 1.0 / n)
    m = _mask(n, list(range(s))).expand(2, n)
    inter = (i / n) ** 2 + ((s - 1) / n) ** 2
    intra = (i / n) ** 2
    assert token_cut_loss(w, m, "inter").item() == pytest.approx(inter, rel=1e-6)
    assert token_cut_loss(w, m, "intra").item() == pytest.approx(intra, rel=1e-6)
    assert token_cut_loss(w, m, "paper").item() == pytest.approx(inter + intra, rel=1e-6)
    assert token_cut_loss(w, m, "none").item() == 0.0


def test_fully_crossed_map():
    # Selected rows attend only to idle tokens and idle rows only to selected image tokens:
    # inter = 1 + 1, intra = 1.
    n = 4
    m = _mask(n, [0, 1])                          # S = {0, 1}, I = {2, 3}
    w = torch.zeros(1, n, n)
    w[0, 0, 2] = w[0, 1, 3] = 1.0                 # S -> I
    w[0, 2, 1] = w[0, 3, 1] = 1.0                 # I -> S \ CLS
    assert token_cut_loss(w, m, "inter").item() == pytest.approx(2.0)
    assert token_cut_loss(w, m, "intra").item() == pytest.approx(1.0)


def test_batch_mean_and_block_mean():
    n = 6
    w_sep = torch.eye(n).unsqueeze(0)             # each token attends to itself: loss 0
    w_uni = torch.full((1, n, n), 1.0 / n)
    m = _mask(n, [0, 1, 2])
    uni = token_cut_loss(w_uni, m).item()
    both = token_cut_loss(torch.cat([w_sep, w_uni]), m.expand(2, n)).item()
    assert both == pytest.approx(uni / 2)
    loss = TokenCutLoss("paper")([w_sep, w_uni], [m, m])
    assert loss.item() == pytest.approx(uni / 2)


def test_no_idle_tokens_is_zero_inter_second_term():
    n = 4
    w = torch.full((1, n, n), 0.25)
    assert token_cut_loss(w, torch.ones(1, n)).item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_flows_and_bad_part():
    w = torch.full((1, 5, 5), 0.2, requires_grad=True)
    token_cut_loss(w, _mask(5, [0, 2])).backward()
    assert w.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown cut-loss part"):
        TokenCutLoss("bogus")
