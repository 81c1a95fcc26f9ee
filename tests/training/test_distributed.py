"""Two CPU processes with gloo, launched with the environment torchrun sets: DDP keeps ranks identical."""
import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from idlevit.training import train
from tests.training.conftest import tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:no --ckpt given")  # seeded weights on purpose


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, port, cfg, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    result = train(cfg)
    torch.save({"weights": result.student.state_dict(), "final": result.final_checkpoint,
                "history": result.history}, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_gloo_processes_end_with_identical_weights_and_only_rank0_writes(tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config(run, epochs=2, device="cpu", synthetic_size=128, synthetic_val_size=33, drop_path=0.1)
    mp.spawn(_rank, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"])
    assert r0["final"] == str(run / "model.pth") and r1["final"] is None
    assert r0["history"][-1]["val"] == r1["history"][-1]["val"]       # one reduced validation, seen by both
    assert sorted(os.listdir(run)) == ["last.pth", "log.jsonl", "model.pth"]
    assert [json.loads(line)["epoch"] for line in open(run / "log.jsonl")] == [0, 1, 2]
    saved = torch.load(run / "model.pth", weights_only=True)["model"]
    assert all(torch.equal(saved[k], r0["weights"][k]) for k in saved)


def _rank_with_projectors(rank, world, port, cfg, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    result = train(cfg)
    torch.save({"weights": result.student.state_dict(), "projectors": result.projectors.state_dict()},
               os.path.join(out_dir, f"rank{rank}.pt"))


def test_projectors_stay_identical_across_gloo_processes(tmp_path):
    # each rank sees other images: only gradients reduced through DDP keep the projectors equal
    cfg = tiny_config(tmp_path / "run", epochs=1, device="cpu", synthetic_size=64, synthetic_val_size=16,
                      feature_kd="projector-ensemble", beta=25.0)
    mp.spawn(_rank_with_projectors, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0["projectors"][k], r1["projectors"][k]) for k in r0["projectors"])
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"])
    saved = torch.load(tmp_path / "run" / "last.pth", weights_only=True)["projectors"]
    assert all(torch.equal(saved[k], r0["projectors"][k]) for k in saved)
