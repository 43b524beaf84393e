"""SQuAD loading: the official nested JSON (plain or gzip) or a Hugging Face hub dataset.

Every answer is checked against its context (``context[start:start + len(text)] == text``).
Answers that fail are dropped and counted rather than silently trained on: a wrong offset
teaches the model a wrong span. An answerable question whose answers were *all* dropped is
kept (so question counts still match the official files) with empty answers; it is counted
in ``SquadData.emptied_questions`` and has no gold answer to train or score against.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

_GZIP_MAGIC = b"\x1f\x8b"
_WARN_IDS = 5  # how many question ids a warning names
_V2_HUB_NAMES = ("squad_v2",)


@dataclass(frozen=True)
class QAExample:
    """One SQuAD question with its context.

    Attributes:
        id: Question id, unique within a dataset.
        title: Article title ("" when the source has none).
        context: The paragraph the answer is taken from.
        question: The question text.
        answers: ``{"text": list[str], "answer_start": list[int]}``; empty lists for
            impossible questions (v2 ``plausible_answers`` are never included).
        is_impossible: True for SQuAD v2 questions that have no answer in the context.
    """

    id: str
    title: str
    context: str
    question: str
    answers: dict  # {"text": list[str], "answer_start": list[int]}
    is_impossible: bool = False


@dataclass
class SquadData:
    """A loaded SQuAD split.

    Attributes:
        examples: The questions, in file order.
        version_2: Whether this is SQuAD v2 data (questions may be impossible).
        source: The path or hub id it was loaded from.
        skipped_answers: Answers dropped because their offset did not match the context.
        emptied_questions: Answerable questions left with no answers by those drops.
    """

    examples: list[QAExample]
    version_2: bool
    source: str
    skipped_answers: int = 0
    emptied_questions: int = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> QAExample:
        return self.examples[index]


def gold_answers(example: QAExample) -> list[str]:
    """Answer texts to score against, as the official scripts use them.

    Args:
        example: A loaded question.

    Returns:
        ``[""]`` for an impossible question (the only correct answer is no answer),
        otherwise the answer texts, duplicates kept (empty if all were dropped).
    """
    if example.is_impossible:
        return [""]
    return list(example.answers["text"])


class _Collector:
    """Builds examples for one source, checking ids and offsets, counting drops."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.examples: list[QAExample] = []
        self.where_seen: dict[str, str] = {}
        self.skipped = 0
        self.skipped_ids: list[str] = []
        self.emptied = 0

    def add(self, where: str, example: QAExample) -> None:
        """Append ``example`` after dropping answers whose offset misses its context."""
        qid, context = example.id, example.context
        if qid in self.where_seen:
            raise ValueError(
                f"{self.name}: {where}: duplicate question id {qid!r} "
                f"(first seen at {self.where_seen[qid]})"
            )
        self.where_seen[qid] = where
        texts, starts = example.answers["text"], example.answers["answer_start"]
        kept = [
            (text, start)
            for text, start in zip(texts, starts, strict=True)
            if start >= 0 and context[start : start + len(text)] == text
        ]
        if len(kept) < len(texts):
            self.skipped += len(texts) - len(kept)
            self.skipped_ids.append(qid)
            self.emptied += not kept
        answers = {"text": [t for t, _ in kept], "answer_start": [s for _, s in kept]}
        self.examples.append(replace(example, answers=answers))

    def finish(self, version_2: bool) -> SquadData:
        if self.skipped:
            shown = ", ".join(self.skipped_ids[:_WARN_IDS])
            more = "" if len(self.skipped_ids) <= _WARN_IDS else ", ..."
            warnings.warn(
                f"{self.name}: dropped {self.skipped} answer(s) whose text does not match "
                f"context[answer_start:answer_start+len(text)] in {len(self.skipped_ids)} "
                f"question(s) ({shown}{more}); {self.emptied} answerable question(s) were "
                "left with no answers",
                stacklevel=3,
            )
        return SquadData(self.examples, version_2, self.name, self.skipped, self.emptied)


def _field(obj: Mapping[str, Any], key: str, kind: type, name: str, where: str) -> Any:
    """``obj[key]`` checked for presence and type; errors name the file and location."""
    if key not in obj:
        raise ValueError(f"{name}: {where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = {str: "a string", int: "an integer", list: "a list", bool: "a boolean"}
        raise ValueError(
            f"{name}: {where}.{key}: expected {expected.get(kind, kind.__name__)}, "
            f"got {type(value).__name__}"
        )
    return value


def _obj(value: Any, name: str, where: str, holds: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{name}: not SQuAD format: {where} is a {type(value).__name__}, "
            f"expected an object with {holds}"
        )
    return value


def _read_json(path: Path, name: str) -> Any:
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:  # by content, not suffix: a .json may well be gzipped
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{name}: not a valid gzip file ({exc})") from exc
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from exc


def _parse_squad_json(doc: Any, name: str) -> tuple[_Collector, bool]:
    """Walk the official nested layout; returns the examples and whether v2 keys occur."""
    if not isinstance(doc, Mapping):
        raise ValueError(
            f"{name}: not SQuAD format: top level is a {type(doc).__name__}, "
            "expected an object with a 'data' list"
        )
    if not isinstance(doc.get("data"), list):
        raise ValueError(f"{name}: no top-level 'data' list (not SQuAD format)")
    version = str(doc.get("version", ""))
    has_v2_keys = version.lstrip("v").startswith("2")
    out = _Collector(name)
    for i, article in enumerate(doc["data"]):
        at = f"data[{i}]"
        article = _obj(article, name, at, "'paragraphs'")
        title = article.get("title", "")
        title = title if isinstance(title, str) else str(title)
        for j, para in enumerate(_field(article, "paragraphs", list, name, at)):
            pat = f"{at}.paragraphs[{j}]"
            para = _obj(para, name, pat, "'context' and 'qas'")
            context = _field(para, "context", str, name, pat)
            for k, qa in enumerate(_field(para, "qas", list, name, pat)):
                qat = f"{pat}.qas[{k}]"
                qa = _obj(qa, name, qat, "'id', 'question' and 'answers'")
                qid = _field(qa, "id", str, name, qat)
                question = _field(qa, "question", str, name, qat)
                impossible = False
                if "is_impossible" in qa:
                    has_v2_keys = True
                    impossible = _field(qa, "is_impossible", bool, name, qat)
                texts: list[str] = []
                starts: list[int] = []
                if not impossible:  # impossible: answers is [] and plausible_answers ignored
                    for m, ans in enumerate(_field(qa, "answers", list, name, qat)):
                        aat = f"{qat}.answers[{m}]"
                        ans = _obj(ans, name, aat, "'text' and 'answer_start'")
                        texts.append(_field(ans, "text", str, name, aat))
                        starts.append(_field(ans, "answer_start", int, name, aat))
                answers = {"text": texts, "answer_start": starts}
                out.add(qat, QAExample(qid, title, context, question, answers, impossible))
    return out, has_v2_keys


def _load_hub(source: str, split: str, version_2: bool | None) -> SquadData:
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(
            f"{source!r} is not an existing file, so it is treated as a Hugging Face hub "
            'dataset id, which needs the `datasets` package: pip install "qa-engine[train]"'
        ) from exc
    rows = datasets.load_dataset(source, split=split)
    if version_2 is None:
        version_2 = source.rsplit("/", 1)[-1].lower() in _V2_HUB_NAMES
    name = f"{source}[{split}]"
    out = _Collector(name)
    for i, row in enumerate(rows):
        at = f"row {i}"
        answers = _field(row, "answers", Mapping, name, at)
        texts = list(_field(answers, "text", list, name, f"{at}.answers"))
        starts = list(_field(answers, "answer_start", list, name, f"{at}.answers"))
        if len(texts) != len(starts):
            raise ValueError(f"{name}: {at}.answers: {len(texts)} texts but {len(starts)} starts")
        example = QAExample(
            id=str(_field(row, "id", object, name, at)),
            title=str(row.get("title") or ""),
            context=_field(row, "context", str, name, at),
            question=_field(row, "question", str, name, at),
            answers={"text": texts, "answer_start": [int(s) for s in starts]},
            is_impossible=bool(version_2 and not texts),
        )
        out.add(at, example)
    return out.finish(version_2)


def _looks_like_path(source: str | os.PathLike) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return source.endswith((".json", ".gz")) or source.startswith((".", "/", "~"))


def load_squad(
    source: str | os.PathLike, *, split: str = "validation", version_2: bool | None = None
) -> SquadData:
    """Load SQuAD v1.1/v2.0 from a JSON file or the Hugging Face hub.

    Args:
        source: Path to an official nested SQuAD JSON file (plain or gzip-compressed),
            or a hub dataset id such as ``"squad"`` or ``"squad_v2"`` (needs ``datasets``).
        split: Hub split to load; ignored for files.
        version_2: Force v2 (impossible questions) on or off; ``None`` auto-detects
            (an ``is_impossible`` key or a "2.x" version in the file; a ``squad_v2`` hub id).

    Returns:
        The examples with the count of dropped answers.

    Raises:
        FileNotFoundError: ``source`` looks like a path but does not exist.
        ValueError: The file is not valid SQuAD JSON; the message names it and the problem.
        ImportError: A hub id was given and ``datasets`` is not installed.
    """
    path = Path(source).expanduser()
    if not path.exists():
        if _looks_like_path(source):
            raise FileNotFoundError(f"SQuAD file not found: {source}")
        return _load_hub(str(source), split, version_2)
    if path.is_dir():
        raise ValueError(f"{source}: is a directory; expected a SQuAD .json or .json.gz file")
    name = str(source)
    collector, has_v2_keys = _parse_squad_json(_read_json(path, name), name)
    return collector.finish(has_v2_keys if version_2 is None else version_2)


def save_squad_json(
    examples: Iterable[QAExample], path: str | os.PathLike, *, version_2: bool | None = None
) -> Path:
    """Write examples in the official nested SQuAD layout (gzip when the name ends in .gz).

    Consecutive examples sharing a title form one article, and consecutive ones sharing a
    context within it one paragraph, so a loaded file round-trips in its original order.

    Args:
        examples: Questions to write.
        path: Output file.
        version_2: Write v2 (``is_impossible`` on every question); ``None`` means v2
            exactly when some example is impossible.

    Returns:
        The path written.
    """
    examples = list(examples)
    for ex in examples:
        if not isinstance(ex, QAExample):
            raise TypeError(f"expected QAExample, got {type(ex).__name__}")
    if version_2 is None:
        version_2 = any(ex.is_impossible for ex in examples)
    data: list[dict[str, Any]] = []
    for ex in examples:
        if not data or data[-1]["title"] != ex.title:
            data.append({"title": ex.title, "paragraphs": []})
        paragraphs = data[-1]["paragraphs"]
        if not paragraphs or paragraphs[-1]["context"] != ex.context:
            paragraphs.append({"context": ex.context, "qas": []})
        answers = [
            {"text": t, "answer_start": s}
            for t, s in zip(ex.answers["text"], ex.answers["answer_start"], strict=True)
        ]
        qa: dict[str, Any] = {"id": ex.id, "question": ex.question, "answers": answers}
        if version_2:
            qa["is_impossible"] = ex.is_impossible
        paragraphs[-1]["qas"].append(qa)
    doc = {"version": "v2.0" if version_2 else "1.1", "data": data}
    out = Path(path)
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    out.write_bytes(gzip.compress(raw, mtime=0) if out.name.endswith(".gz") else raw)
    return out
