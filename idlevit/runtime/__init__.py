"""Running IdleViT: MAC counting, backend runners, parity and benchmarks."""
