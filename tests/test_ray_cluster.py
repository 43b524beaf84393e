"""qa-engine on a simulated two-node Ray cluster (``ray.cluster_utils.Cluster``).

Two raylets on this machine, one logical CPU each, so a pool of two one-CPU engines can
only fit by using both nodes. Serve replicas and Ray Data actors are looked up in the
GCS actor table afterwards: each must have run on both nodes, and the answers must
still equal the local engine's.
"""

from __future__ import annotations

import json

import pytest
from corpus_rows import good_rows, read_results, write_jsonl
from ports import free_port
from ray_kit import slow_machine_env

ray = pytest.importorskip("ray")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from ray import serve  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from qa_engine import QAEngine  # noqa: E402
from qa_engine.corpus import AnswerOptions  # noqa: E402
from qa_engine.corpus.local import answer_file  # noqa: E402
from qa_engine.ray.batch import RayOptions, answer_file_ray  # noqa: E402
from qa_engine.ray.serve_app import RayServeOptions, build  # noqa: E402

pytestmark = pytest.mark.slow  # two raylets, a Serve app and an actor pool
NODE_MEMORY = 80 * 1024**2


@pytest.fixture(scope="module")
def cluster():
    """A head and one worker node, one CPU each; torn down after the module."""
    head = {"num_cpus": 1, "object_store_memory": NODE_MEMORY, "include_dashboard": False}
    with slow_machine_env():
        two_nodes = Cluster(initialize_head=True, head_node_args=head)
        two_nodes.add_node(num_cpus=1, object_store_memory=NODE_MEMORY)
        ray.init(address=two_nodes.address, log_to_driver=False, configure_logging=False)
        two_nodes.wait_for_nodes()
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield two_nodes
        serve.shutdown()
        ray.shutdown()
        two_nodes.shutdown()


def actor_nodes(class_part: str) -> list[str]:
    """Node ids of every actor (alive or dead) whose class name contains ``class_part``.

    The GCS actor table, read without the dashboard (``ray.util.state`` needs it).
    """
    from ray._private.state import actors

    return [
        info["Address"]["NodeID"]
        for info in actors().values()
        if class_part in info["ActorClassName"]
    ]


def alive_nodes() -> set[str]:
    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def test_predict_actors_use_both_nodes(cluster, tiny_onnx_dir, tmp_path):
    source = tmp_path / "in.jsonl"
    rows, bad = write_jsonl(source, 400, bad_every=40)
    options = AnswerOptions()
    local_out, remote_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    answer_file(engine, source, local_out, options, progress=False)
    # Small batches: enough blocks that the pool grows to both one-CPU actors.
    summary = answer_file_ray(
        tiny_onnx_dir, source, remote_out, options, RayOptions(actors=2, rows_per_batch=16)
    )
    assert (summary.rows, summary.errors) == (rows, bad)
    assert set(actor_nodes("EngineActor")) == alive_nodes()
    local, remote = read_results(local_out), read_results(remote_out)
    key = lambda r: (r["id"] or "", r["error"] or "")  # noqa: E731
    for want, got in zip(sorted(local, key=key), sorted(remote, key=key), strict=True):
        assert {k: got[k] for k in ("id", "answer", "start", "end", "error")} == {
            k: want[k] for k in ("id", "answer", "start", "end", "error")
        }


def pair(row: dict) -> dict:
    return {"question": row["question"], "context": row["context"]}


def test_serve_replicas_use_both_nodes_and_answer(cluster, tiny_onnx_dir):
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    options = RayServeOptions(replicas=2, cpus_per_replica=1)
    serve.run(build(tiny_onnx_dir, {"device": "cpu"}, options), name="two", route_prefix="/")
    assert set(actor_nodes("QAEngine")) == alive_nodes()  # one replica per node
    engine = QAEngine(tiny_onnx_dir, device="cpu", threads=1)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for row in good_rows(24):  # Serve spreads requests over both replicas
            r = client.post("/", content=json.dumps({"inputs": pair(row)}))
            want = engine(row["question"], row["context"])
            assert r.status_code == 200, r.text
            got = r.json()
            assert (got["answer"], got["start"], got["end"]) == (want.text, want.start, want.end)
    serve.delete("two")
