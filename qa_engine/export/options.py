"""The export stage's options: one validated dataclass, filled by the CLI or by code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

OPTIMIZE_LEVELS = ("none", "O1", "O2", "O3", "O4")
QUANTIZE_MODES = (
    "none",
    "int8-dynamic",
    "int8-static",
    "int8-nncf",
    "int8-openvino",
    "fp16",
    "auto",
)
INT8_MODES = ("int8-dynamic", "int8-static", "int8-nncf", "int8-openvino")
# Modes calibrated on real windows, hence needing --calibration-file.
CALIBRATED_MODES = ("int8-static", "int8-nncf", "int8-openvino")
DEVICES = ("cpu", "cuda")

# The fp32 parity gate: an fp32 graph whose logits differ from PyTorch by more than this
# is a broken export, not a rounding difference.
FP32_ATOL = 1e-3
DEFAULT_MAX_SEQ_LENGTH = 384
DEFAULT_DOC_STRIDE = 128


DEFAULT_PARITY_SAMPLES_REAL = 1000
DEFAULT_PARITY_SAMPLES_GENERATED = 64


@dataclass
class ExportOptions:
    """What to export and how.

    Attributes:
        model: Fine-tuned checkpoint dir (``qa-engine finetune`` output) or hub id.
        out_dir: Export dir to create (written atomically).
        optimize: ORT graph optimisation level: none, O1-O3 (fp32), O4 (O3 + fp16, for CUDA).
        quantize: none, int8-dynamic, int8-static (QDQ, calibrated), int8-nncf (NNCF static
            int8 with uint8 activations: batch-invariant, int8 on onnxruntime's CPU provider
            and OpenVINO), int8-openvino (NNCF QDQ of the unoptimised graph, for OpenVINO's
            int8 kernels), fp16, or auto.
        calibration_file: SQuAD JSON for static calibration, F1 scoring and parity pairs.
        calibration_samples: Questions of ``calibration_file`` used for static calibration
            (one window each: the first).
        parity_samples: Most questions compared with PyTorch (and scored for F1): each
            variant stops at the first look that decides its F1 drop
            (:func:`~qa_engine.export.evidence.sequential_f1_drop`); None: 1,000 real
            questions with ``calibration_file`` (a paired bootstrap on 200 cannot resolve a
            0.5% F1 budget; 1,000 narrows the interval ~2.2x), else 64 generated pairs.
        device: Where the variants are verified and timed (and fp16 is meant to run).
        max_f1_drop: ``auto`` keeps variants whose relative F1 drop is at most this (%).
        max_seq_length: Window length; default from qa_config.json, else 384.
        doc_stride: Window overlap; default from qa_config.json, else 128.
        opset: ONNX opset; None lets optimum choose.
        force: Replace an existing export at ``out_dir``, and write a chosen variant whose
            F1 evidence is over ``max_f1_drop`` (refused otherwise; it loads with a warning).
        atol: fp32 parity gate on max |logit difference|.
        seed: Seed for the generated parity pairs.
        batch_size: Windows per call the model will run at; ``auto`` ranks speed there
            (windows/s in batches of this size, one window per call for a variant that is
            not batch-invariant, as the runtime runs it). 1: batch-1 latency.
    """

    model: str
    out_dir: Path
    optimize: str = "O2"
    quantize: str = "none"
    calibration_file: Path | None = None
    calibration_samples: int = 128
    parity_samples: int | None = None
    device: str = "cpu"
    max_f1_drop: float = 1.0
    max_seq_length: int | None = None
    doc_stride: int | None = None
    opset: int | None = None
    force: bool = False
    atol: float = FP32_ATOL
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.calibration_file is not None:
            self.calibration_file = Path(self.calibration_file)
        choices = (
            ("optimize", OPTIMIZE_LEVELS),
            ("quantize", QUANTIZE_MODES),
            ("device", DEVICES),
        )
        for name, valid in choices:
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        if self.parity_samples is None:
            self.parity_samples = (
                DEFAULT_PARITY_SAMPLES_REAL
                if self.calibration_file is not None
                else DEFAULT_PARITY_SAMPLES_GENERATED
            )
        for name in ("calibration_samples", "parity_samples", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_f1_drop < 0:
            raise ValueError(f"max_f1_drop must be >= 0 (a percentage), got {self.max_f1_drop}")
        if self.atol <= 0:
            raise ValueError(f"atol must be > 0, got {self.atol}")
        if self.optimize == "O4" and self.quantize in INT8_MODES:
            raise ValueError(
                "optimize O4 already converts to fp16; int8 quantization needs an fp32 graph "
                "(use --optimize O2 or O3 with --quantize int8-dynamic/int8-static)"
            )
        if self.device == "cuda" and self.quantize in INT8_MODES:
            raise ValueError(
                "int8 variants are CPU variants (ORT's CUDA provider has no fast kernels for "
                "them); use --quantize fp16 or --optimize O4 with --device cuda"
            )
        if self.quantize in (*CALIBRATED_MODES, "auto") and (self.calibration_file is None):
            raise ValueError(
                f"--quantize {self.quantize} needs --calibration-file (a SQuAD JSON): "
                + (
                    "static int8 is calibrated on real features"
                    if self.quantize != "auto"
                    else "auto scores F1 on a dev subset"
                )
            )
        if self.calibration_file is not None and not self.calibration_file.is_file():
            raise FileNotFoundError(f"calibration file not found: {self.calibration_file}")

    @property
    def fp16_graph(self) -> bool:
        """Whether the main variant is fp16 (O4, or --quantize fp16)."""
        return self.optimize == "O4" or self.quantize == "fp16"
