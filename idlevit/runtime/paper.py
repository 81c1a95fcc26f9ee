"""Reference figures quoted from the IdleViT paper (Table 1: DeiT-S and LV-ViT-S), for labelled comparison only."""
from typing import Dict, Optional, Tuple

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

# LV-ViT-S rows: keep ratio -> (GMACs as published, img/s on a V100, PyTorch, batch 128)
PAPER_LVVIT_S_IMG_S = {
    1.0: (6.6, 700.7),
    0.9: (5.8, 752.5),
    0.8: (5.1, 855.3),
    0.7: (4.5, 937.5),
    0.6: (4.0, 1040.3),
    0.5: (3.6, 1131.4),
}
PAPER_LVVIT_S_TABLE1 = {r: (g, ips / PAPER_LVVIT_S_IMG_S[1.0][1]) for r, (g, ips) in PAPER_LVVIT_S_IMG_S.items()}


def paper_table1(model_name: str, img_size: Optional[int] = None) -> Optional[Dict[float, Tuple[float, float]]]:
    """Table 1 rows (keep ratio -> (GMACs, speed-up)) for this model at 224 px, or None if the paper has none."""
    if img_size not in (None, 224):
        return None
    if model_name.endswith("deit_small_patch16_224"):
        return PAPER_DEIT_S_TABLE1
    if model_name in ("idlevit_lvvit_s", "lvvit_s"):
        return PAPER_LVVIT_S_TABLE1
    return None
