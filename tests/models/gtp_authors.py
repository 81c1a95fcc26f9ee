"""Load the GTP-ViT authors' `models_v3.py` from $IDLEVIT_GTP_AUTHORS_SRC (their file or a checkout of
github.com/Ackesnal/GTP-ViT), with two local edits so it runs on a CPU: the spatial graph stays off CUDA and
the `missing` statistics file is not appended to on every forward. Their code is run, never copied."""
import os
import sys
import types
from typing import Optional

ENV = "IDLEVIT_GTP_AUTHORS_SRC"
SKIP_REASON = (f"set {ENV} to the GTP-ViT authors' models_v3.py (or a checkout of github.com/Ackesnal/GTP-ViT) "
               "to compare against their eval forward")
_EDITS = (
    ('self.spatial_graph = graph.to("cuda")', "self.spatial_graph = graph"),
    ('with open("missing", "a") as fp:', "if False:"),
)
_MODULE_NAME = "gtp_authors_models_v3"


def authors_source_path() -> Optional[str]:
    path = os.environ.get(ENV)
    if not path:
        return None
    return os.path.join(path, "models_v3.py") if os.path.isdir(path) else path


def load_authors_module() -> types.ModuleType:
    """Their module, patched and registered in sys.modules (their @register_model needs it there), once."""
    if _MODULE_NAME in sys.modules:
        return sys.modules[_MODULE_NAME]
    path = authors_source_path()
    with open(path) as f:
        source = f.read()
    for old, new in _EDITS:
        if source.count(old) != 1:
            raise RuntimeError(f"{path} no longer contains {old!r} exactly once: update the edits in {__file__}")
        source = source.replace(old, new)
    module = types.ModuleType(_MODULE_NAME)
    module.__file__ = path
    sys.modules[_MODULE_NAME] = module
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def authors_model(size: str, num_prop, num_neighbours: int, alpha: float, graph: str, token_scale: bool,
                  sparsity: float = 1.0):
    """Their `graph_propagation_deit_<size>_patch16_224` with selection MixedAttnMax and GraphProp, in eval mode.
    The entry point is called directly: timm 1.0's create_model passes `cache_dir`, which it does not take."""
    fn = getattr(load_authors_module(), f"graph_propagation_deit_{size}_patch16_224")
    model = fn(selection="MixedAttnMax", propagation="GraphProp", num_prop=num_prop, num_neighbours=num_neighbours,
               alpha=alpha, graph_type=graph.capitalize(), token_scale=token_scale, sparsity=sparsity)
    return model.eval()
