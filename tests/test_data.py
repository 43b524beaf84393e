"""SQuAD loading: official JSON (plain and gzip), validation errors, offsets, hub ids."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from qa_engine.data import QAExample, SquadData, gold_answers, load_squad, save_squad_json

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
V1_DEV = SHARED_DATA / "squad-v1.1" / "dev-v1.1.json.gz"
V2_DEV = SHARED_DATA / "squad-v2.0" / "dev-v2.0.reconstructed.json.gz"

CONTEXT = "The Normans were in Normandy. Rollo was their first ruler."


def _qa(qid: str, question: str, text: str, start: int) -> dict[str, Any]:
    return {"id": qid, "question": question, "answers": [{"text": text, "answer_start": start}]}


def squad_doc(*, v2: bool = False) -> dict[str, Any]:
    """Two articles, three paragraphs, five questions in the official layout."""
    qas = [
        {
            "id": "q1",
            "question": "Where were the Normans?",
            "answers": [{"text": "Normandy", "answer_start": 20}] * 2,
        },
        {
            "id": "q2",
            "question": "Who was the first ruler?",
            "answers": [{"text": "Rollo", "answer_start": 30}],
        },
    ]
    doc = {
        "version": "1.1",
        "data": [
            {"title": "Normans", "paragraphs": [{"context": CONTEXT, "qas": qas}]},
            {
                "title": "Other",
                "paragraphs": [
                    {"context": "abc def", "qas": [_qa("q3", "?", "def", 4)]},
                    {
                        "context": "ghi",
                        "qas": [_qa("q4", "??", "ghi", 0), _qa("q5", "???", "g", 0)],
                    },
                ],
            },
        ],
    }
    if v2:
        doc["version"] = "v2.0"
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    qa["is_impossible"] = False
        impossible = doc["data"][1]["paragraphs"][1]["qas"][1]
        impossible.update(
            is_impossible=True,
            answers=[],
            plausible_answers=[{"text": "g", "answer_start": 0}],
        )
    return doc


def write(path: Path, doc: Any) -> Path:
    raw = json.dumps(doc).encode()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def test_load_v1(tmp_path: Path) -> None:
    data = load_squad(write(tmp_path / "dev.json", squad_doc()))
    assert isinstance(data, SquadData)
    assert len(data) == 5 and [ex.id for ex in data] == ["q1", "q2", "q3", "q4", "q5"]
    assert not data.version_2 and data.skipped_answers == 0
    assert data.source == str(tmp_path / "dev.json")
    first = data[0]
    assert first == QAExample(
        id="q1",
        title="Normans",
        context=CONTEXT,
        question="Where were the Normans?",
        answers={"text": ["Normandy", "Normandy"], "answer_start": [20, 20]},
        is_impossible=False,
    )
    assert gold_answers(first) == ["Normandy", "Normandy"]
    assert data[3].title == "Other" and data[3].context == "ghi"


def test_load_v2_autodetects_and_drops_plausible_answers(tmp_path: Path) -> None:
    data = load_squad(write(tmp_path / "dev-v2.json", squad_doc(v2=True)))
    assert data.version_2
    impossible = data[4]
    assert impossible.is_impossible
    assert impossible.answers == {"text": [], "answer_start": []}
    assert gold_answers(impossible) == [""]
    assert not data[0].is_impossible
    # the override wins over detection
    assert not load_squad(tmp_path / "dev-v2.json", version_2=False).version_2
    assert load_squad(write(tmp_path / "v1.json", squad_doc()), version_2=True).version_2


def test_load_gzip_by_content(tmp_path: Path) -> None:
    plain = load_squad(write(tmp_path / "dev.json", squad_doc()))
    gz = load_squad(write(tmp_path / "dev.json.gz", squad_doc()))
    assert gz.examples == plain.examples
    # gzip detected from the bytes, not the name
    (tmp_path / "misnamed.json").write_bytes((tmp_path / "dev.json.gz").read_bytes())
    assert load_squad(str(tmp_path / "misnamed.json")).examples == plain.examples


def test_bad_offsets_are_dropped_counted_and_warned(tmp_path: Path) -> None:
    doc = squad_doc()
    qas = doc["data"][0]["paragraphs"][0]["qas"]
    qas[0]["answers"] = [
        {"text": "Normandy", "answer_start": 21},  # off by one
        {"text": "Normandy", "answer_start": 20},
    ]
    qas[1]["answers"] = [{"text": "Rollo", "answer_start": -30}]  # all bad: emptied
    with pytest.warns(UserWarning, match=r"dropped 2 answer\(s\).*q1, q2.*1 answerable"):
        data = load_squad(write(tmp_path / "dev.json", doc))
    assert data.skipped_answers == 2
    assert data.emptied_questions == 1
    assert data[0].answers == {"text": ["Normandy"], "answer_start": [20]}
    # kept, with empty answers, and still answerable
    assert len(data) == 5
    assert data[1].answers == {"text": [], "answer_start": []}
    assert not data[1].is_impossible
    assert gold_answers(data[1]) == []


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_squad(missing)
    with pytest.raises(FileNotFoundError, match="nope.json.gz"):
        load_squad("./nope.json.gz")


def _mutate(doc: dict[str, Any], path: tuple, key: str, value: Any = None) -> dict[str, Any]:
    node: Any = doc
    for step in path:
        node = node[step]
    if value is None:
        del node[key]
    else:
        node[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "not SQuAD format: top level is a list"),
        ({"version": "1.1"}, "no top-level 'data' list"),
        ({"data": {"title": "x"}}, "no top-level 'data' list"),
        ({"data": ["x"]}, r"not SQuAD format: data\[0\] is a str"),
        (_mutate(squad_doc(), ("data", 1), "paragraphs"), r"data\[1\]: missing field 'paragraphs'"),
        (
            _mutate(squad_doc(), ("data", 1, "paragraphs", 1, "qas", 0), "question"),
            r"data\[1\]\.paragraphs\[1\]\.qas\[0\]: missing field 'question'",
        ),
        (
            _mutate(squad_doc(), ("data", 0, "paragraphs", 0), "context"),
            r"data\[0\]\.paragraphs\[0\]: missing field 'context'",
        ),
        (
            _mutate(squad_doc(), ("data", 0, "paragraphs", 0, "qas", 1), "answers"),
            r"qas\[1\]: missing field 'answers'",
        ),
        (
            _mutate(squad_doc(), ("data", 0, "paragraphs", 0, "qas", 1, "answers", 0), "text"),
            r"qas\[1\]\.answers\[0\]: missing field 'text'",
        ),
        (
            _mutate(
                squad_doc(),
                ("data", 0, "paragraphs", 0, "qas", 1, "answers", 0),
                "answer_start",
                "30",
            ),
            r"answers\[0\]\.answer_start: expected an integer, got str",
        ),
        (
            _mutate(squad_doc(), ("data", 0, "paragraphs", 0, "qas", 0), "id", 7),
            r"qas\[0\]\.id: expected a string, got int",
        ),
        (
            _mutate(squad_doc(), ("data", 1, "paragraphs", 1, "qas", 1), "id", "q1"),
            r"qas\[1\]: duplicate question id 'q1' \(first seen at data\[0\]",
        ),
    ],
)
def test_malformed_files_name_file_and_problem(tmp_path: Path, doc: Any, message: str) -> None:
    path = write(tmp_path / "dev.json", doc)
    with pytest.raises(ValueError, match=message) as info:
        load_squad(path)
    assert str(info.value).startswith(f"{path}: ")


def test_not_json_and_bad_gzip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        load_squad(bad)
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(gzip.compress(b'{"data": []}')[:12])
    with pytest.raises(ValueError, match=r"broken\.json\.gz: not a valid gzip file"):
        load_squad(broken)
    with pytest.raises(ValueError, match="is a directory"):
        load_squad(tmp_path)


@pytest.mark.parametrize("name", ["out.json", "out.json.gz"])
def test_save_load_round_trip(tmp_path: Path, name: str) -> None:
    for v2 in (False, True):
        original = load_squad(write(tmp_path / "in.json", squad_doc(v2=v2)))
        out = save_squad_json(original, tmp_path / name)
        again = load_squad(out)
        assert again.examples == original.examples
        assert again.version_2 == v2
        # the nesting is rebuilt: 2 articles, paragraphs grouped by context
        doc = json.loads(
            gzip.decompress(out.read_bytes()) if name.endswith(".gz") else out.read_text()
        )
        assert [len(a["paragraphs"]) for a in doc["data"]] == [1, 2]
        assert ("is_impossible" in doc["data"][0]["paragraphs"][0]["qas"][0]) == v2


def test_save_rejects_non_examples(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="QAExample"):
        save_squad_json([{"id": "x"}], tmp_path / "out.json")  # type: ignore[list-item]


def _fake_datasets(rows: list[dict[str, Any]], calls: list) -> types.ModuleType:
    module = types.ModuleType("datasets")

    def load_dataset(name: str, split: str) -> list[dict[str, Any]]:
        calls.append((name, split))
        return rows

    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    return module


def test_hub_id_converts_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        {"id": "h1", "title": "T", "context": "abc def", "question": "?",
         "answers": {"text": ["def"], "answer_start": [4]}},
        {"id": "h2", "title": "T", "context": "abc def", "question": "??",
         "answers": {"text": [], "answer_start": []}},
    ]  # fmt: skip
    calls: list = []
    monkeypatch.setitem(sys.modules, "datasets", _fake_datasets(rows, calls))
    data = load_squad("rajpurkar/squad_v2", split="train")
    assert calls == [("rajpurkar/squad_v2", "train")]
    assert data.version_2 and data.source == "rajpurkar/squad_v2[train]"
    assert data[0].answers == {"text": ["def"], "answer_start": [4]}
    assert data[1].is_impossible and not data[0].is_impossible
    v1 = load_squad("squad")
    assert not v1.version_2 and not v1[1].is_impossible


def test_hub_id_without_datasets_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(ImportError, match=r'pip install "qa-engine\[train\]"'):
        load_squad("squad")


@pytest.mark.data
@pytest.mark.skipif(not V1_DEV.exists(), reason=f"{V1_DEV} not found")
def test_real_v1_dev() -> None:
    data = load_squad(V1_DEV)
    assert len(data) == 10_570
    assert not data.version_2 and data.skipped_answers == 0
    assert sum(len(ex.answers["text"]) for ex in data) == 34_726


@pytest.mark.data
@pytest.mark.skipif(not V2_DEV.exists(), reason=f"{V2_DEV} not found")
def test_real_v2_dev_reconstructed() -> None:
    data = load_squad(V2_DEV)
    assert data.version_2
    assert len(data) == 11_873
    assert sum(ex.is_impossible for ex in data) == 5_945
    assert data.skipped_answers == 0
