"""The load benchmark's peer: what users write by hand.

The transformers ``question-answering`` pipeline behind a plain FastAPI endpoint of the
same contract as ``qa-engine serve`` (``POST /``, ``GET /health``): a synchronous
handler, which FastAPI runs in its thread pool, one pipeline call per request, no
cross-request batching. Same window settings as the model's ``qa_config.json``.

    python -m qa_engine.bench.pipeline_server MODEL_DIR --port 8001 --threads 2
"""

# No `from __future__ import annotations`: FastAPI must see the request model itself.
import json
from pathlib import Path

import click


def create_pipeline_app(model_dir: str, threads: "int | None" = None):
    """A FastAPI app answering with the transformers pipeline on ``model_dir``."""
    import torch
    from fastapi import FastAPI
    from pydantic import BaseModel
    from transformers import pipeline

    if threads:
        torch.set_num_threads(threads)
    config_path = Path(model_dir) / "qa_config.json"
    qa = json.loads(config_path.read_text()) if config_path.is_file() else {}
    pipe = pipeline("question-answering", model=model_dir, tokenizer=model_dir, device="cpu")
    call = {
        "max_seq_len": qa.get("max_seq_length", 384),
        "doc_stride": qa.get("doc_stride", 128),
        "max_answer_len": qa.get("max_answer_length", 30),
    }

    class Inputs(BaseModel):
        question: str
        context: str

    class Body(BaseModel):
        inputs: Inputs
        parameters: dict = {}

    app = FastAPI(title="transformers pipeline peer")

    @app.post("/")
    def answer(body: Body) -> dict:
        out = pipe(question=body.inputs.question, context=body.inputs.context, **call)
        return {k: out[k] for k in ("answer", "score", "start", "end")}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8001, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None)
def main(model_dir: str, host: str, port: int, threads: "int | None") -> None:
    """Serve MODEL_DIR with the transformers pipeline (the load benchmark's peer)."""
    import uvicorn

    uvicorn.run(create_pipeline_app(model_dir, threads), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
