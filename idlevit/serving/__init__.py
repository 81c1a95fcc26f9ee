"""Serving with NVIDIA Triton: model repositories, the python-backend model, a load-following keep ratio, load tests."""
