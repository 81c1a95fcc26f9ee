"""Reference figures quoted from the IdleViT paper (Table 1, DeiT-S), for labelled comparison only."""

# keep ratio -> (GMACs in the paper's convention, speed-up over DeiT-S on a V100, PyTorch, batch 128)
PAPER_DEIT_S_TABLE1 = {
    1.0: (4.6, 1.00),
    0.9: (4.0, 1.07),
    0.8: (3.5, 1.22),
    0.7: (3.1, 1.36),
    0.6: (2.7, 1.49),
    0.5: (2.4, 1.64),
    0.4: (2.1, 1.76),
    0.3: (1.9, 1.89),
}
PAPER_DEIT_S_BASELINE_IMG_S = 2476.8
