"""How an engine settles on a provider and precision: the first candidate whose answers
pass the export's self-check (:mod:`qa_engine.selfcheck`).

``device="auto"`` walks CUDA, OpenVINO (bf16 on AMX, then f32) and the CPU provider;
plain ``"openvino"`` walks bf16 then f32; an explicit device is tried alone and, when it
fails, the error names the device strings that pass. Exports written before the
self-check load with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qa_engine.selfcheck import (
    SelfCheck,
    SelfCheckError,
    Verdict,
    reduced_precision_tolerance,
    run_check,
)
from qa_engine.session import OnnxQASession, ProviderSpec, candidate_devices

if TYPE_CHECKING:
    from qa_engine.engine import QAEngine


def recheck(engine: QAEngine) -> Verdict:
    """The check on the engine's current session, refusing nothing."""
    summary = engine.manifest.self_check
    if summary is None:
        return Verdict(
            "unverified", engine.self_check.device, engine.providers, precision_of(engine)
        )
    return check(engine, SelfCheck.load(engine.path, summary), engine.self_check.device)


def open_verified(
    engine: QAEngine, device: str, providers: Sequence[ProviderSpec] | None, verify: bool
) -> Verdict:
    """Build the session on the first candidate whose answers pass the self-check."""
    summary = engine.manifest.self_check
    if providers is not None:
        candidates = [device]
    else:
        if not isinstance(device, str):
            raise TypeError(f"device must be a string, got {type(device).__name__}")
        candidates = list(candidate_devices(device))
    walking = len(candidates) > 1
    if not verify or summary is None:
        # Without a check nothing proves bf16 right for a graph that is not int8
        # (OpenVINO's bf16 hint wrecked an unfused fp32 MiniLM): f32 then.
        if not engine.manifest.precision.startswith("int8"):
            candidates = [c for c in candidates if c != "openvino:bf16"] or candidates
        engine.session = _first_that_builds(engine, candidates, providers)
        status = "skipped" if not verify else "unverified"
        if verify:
            warnings.warn(
                f"{engine.path}: this export has no self-check reference windows (written "
                "before qa-engine recorded them), so its answers on "
                f"{engine.session.providers[0]} are unverified; re-export to add them",
                stacklevel=4,
            )
        return Verdict(status, device, engine.session.providers, precision_of(engine))
    reference = SelfCheck.load(engine.path, summary)
    tried: list[dict] = []
    for candidate in candidates:
        label = candidate if providers is None else f"providers={list(providers)}"
        try:
            with warnings.catch_warnings():
                if walking:  # a candidate that cannot run is recorded, not shouted
                    warnings.simplefilter("ignore")
                engine.session = engine._build(candidate, providers, whole=walking)
        except (RuntimeError, ValueError) as err:
            if not walking:
                raise
            tried.append({"device": label, "status": "unavailable", "reason": str(err)})
            continue
        verdict = check(engine, reference, label)
        if verdict.passed:
            verdict.tried = tried
            if verdict.forced_over_budget:
                warnings.warn(forced_warning(engine, verdict), stacklevel=3)
            return verdict
        tried.append(verdict.to_dict())
        if not walking:
            raise SelfCheckError(_refusal(engine, verdict, reference, label))
    raise SelfCheckError(
        f"{engine.path}: no candidate of device={device!r} passed the self-check: "
        + "; ".join(_describe(t) for t in tried)
    )


def _first_that_builds(
    engine: QAEngine, candidates: list[str], providers: Sequence[ProviderSpec] | None
) -> OnnxQASession:
    for candidate in candidates[:-1]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return engine._build(candidate, providers, whole=True)
        except (RuntimeError, ValueError):
            continue
    return engine._build(candidates[-1], providers, whole=len(candidates) > 1)


def forced_warning(engine: QAEngine, verdict: Verdict) -> str:
    """The warning for a variant the export measured over budget but wrote with --force."""
    drop = verdict.export_f1_drop or {}
    return (
        f"{engine.path}: the export measured this variant's F1 {drop.get('point', 0):.2f}% "
        f"below PyTorch's (interval {drop.get('low', 0):.2f} to {drop.get('high', 0):.2f}), "
        f"over its {drop.get('budget', 0):g}% budget; it was written with "
        "`qa-engine export --force`, so it loads, but its answers are measurably worse"
    )


def precision_of(engine: QAEngine) -> str:
    """What computes: the graph's precision, plus an OpenVINO hint below it."""
    hint = engine.session.inference_hint
    if hint in (None, "f32"):
        return engine.manifest.precision
    return f"{engine.manifest.precision} graph, {hint} inference"


def check(engine: QAEngine, reference: SelfCheck, label: str) -> Verdict:
    """Run the reference on the engine's current session; bf16 inference gets its bound."""
    hint = engine.session.inference_hint
    reduced = None
    if hint not in (None, "f32"):
        reduced = reduced_precision_tolerance(reference.windows, f"{hint} inference")
    return run_check(
        reference,
        engine.run_windows,
        device=label,
        providers=engine.session.providers,
        precision=precision_of(engine),
        reduced=reduced,
    )


def _refusal(engine: QAEngine, verdict: Verdict, reference: SelfCheck, label: str) -> str:
    """The error for an explicit device that failed, naming the devices that pass."""
    failed = engine.session
    passing = []
    # Unavailable ones fail to build and are skipped.
    for other in dict.fromkeys([*candidate_devices("auto"), *candidate_devices("openvino")]):
        if other == label:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                engine.session = engine._build(other, None, whole=True)
            if check(engine, reference, other).passed:
                passing.append(other)
        except (RuntimeError, ValueError):
            continue
    engine.session = failed
    return (
        f"{engine.path}: the self-check refused {label}: {_describe(verdict.to_dict())}. "
        "On this path its answers would be silently wrong. "
        + (
            f"Devices that pass here: {', '.join(passing)}."
            if passing
            else "No other device passes here either."
        )
        + " (verify=False skips the check.)"
    )


def _describe(tried: dict) -> str:
    if tried.get("status") == "unavailable":
        return f"{tried['device']}: unavailable ({tried['reason']})"
    tol = tried.get("tolerance") or {}
    return (
        f"{tried['device']} ({tried['precision']} on {', '.join(tried['providers'])}) max|dlogit| "
        f"{tried['max_abs_logit_diff']:.3g} (bound {tol.get('max_abs_logit_diff', 0):.3g}), "
        f"answer agreement {tried['answer_agreement']:.0%} "
        f"(floor {tol.get('min_answer_agreement', 0):.0%})"
        + (
            f"; the export measured this variant's F1 {drop['point']:.2f}% below PyTorch's "
            f"(95% interval {drop['low']:.2f} to {drop['high']:.2f}), over the "
            f"{drop['budget']:g}% accuracy budget"
            if (drop := tried.get("export_f1_drop")) and drop.get("decision") == "over"
            else ""
        )
    )
