#!/usr/bin/env python3
"""Export a sentence-transformers folder to an int8 ONNX Runtime model, checked against the folder itself.

Steps, all offline: the folder's transformer is traced to ONNX with its pooling (mean or CLS) and L2
normalisation in the graph; ONNX Runtime's transformer optimizer fuses attention, GELU and layer norms; the
matrix products are quantized to int8 (dynamic, per channel, 7-bit weights so that CPUs without VNNI do not
saturate). The result is compared with the folder run by sentence-transformers on real passages and questions
(`scripts/data/embedding_agreement.json`): every cosine must reach `--min-cosine` and each question must find
the same nearest passage. Only then is `<folder>/onnx/` written, atomically, with `vigie-onnx.json` recording
the SHA-256 of the ONNX file and of the source files (checked at every load by `index.onnx_embedding`).

Usage::

    python scripts/export_onnx_embedding.py                    # the configured folder (VIGIE_EMBEDDING_MODEL)
    python scripts/export_onnx_embedding.py --model DIR --force
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from index import onnx_embedding
from index.integrity import sha256_of

LOG = logging.getLogger("export_onnx_embedding")
AGREEMENT_DATA = Path(__file__).resolve().parent / "data" / "embedding_agreement.json"
MODEL_FILE = "model_int8.onnx"
OPSET = 17
MIN_COSINE = 0.985


class ExportRefused(RuntimeError):
    """The folder cannot be exported, or the export does not agree with it."""


def _pooling(model_dir: Path) -> tuple[str, bool]:
    """The folder's pooling mode and whether it normalises, from its modules.json."""
    modules = json.loads((model_dir / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in {"Transformer", "Pooling", "Normalize"} for k in kinds):
        raise ExportRefused(f"{model_dir}: modules {kinds} — only Transformer → Pooling [→ Normalize] is exported")
    pooling_dir = model_dir / modules[1]["path"]
    config = json.loads((pooling_dir / "config.json").read_text())
    mode = config.get("pooling_mode") or ("mean" if config.get("pooling_mode_mean_tokens") else
                                         "cls" if config.get("pooling_mode_cls_token") else None)
    if mode not in {"mean", "cls"}:
        raise ExportRefused(f"{pooling_dir}: pooling {mode!r} — only mean and cls pooling are exported")
    return mode, "Normalize" in kinds


def _trace(model_dir: Path, out: Path, pooling: str, normalize: bool) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    # eager attention traces to the pattern ONNX Runtime's optimizer fuses into one Attention node
    encoder = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled

    sample = torch.tensor([[0, 100, 200, 2]])
    with torch.no_grad():
        torch.onnx.export(Pooled().eval(), (sample, torch.ones_like(sample)), str(out),
                          input_names=["input_ids", "attention_mask"], output_names=["sentence_embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "sentence_embedding": {0: "batch"}},
                          opset_version=OPSET, dynamo=False)
    return {"model_type": config.model_type, "hidden_size": config.hidden_size,
            "num_attention_heads": config.num_attention_heads,
            "max_position_embeddings": config.max_position_embeddings}


def _optimize_and_quantize(traced: Path, out: Path, arch: dict[str, Any]) -> dict[str, Any]:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = traced.with_name("optimized.onnx")
    model = optimize_model(str(traced), model_type="bert", num_heads=arch["num_attention_heads"],
                           hidden_size=arch["hidden_size"], opt_level=1, use_gpu=False)
    fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    model.save_model_to_file(str(optimized))
    quantize_dynamic(str(optimized), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul", "Attention"], extra_options={"DefaultTensorType": 1})
    return {"fused_operators": fused, "weights": "int8 per channel, 7-bit (reduce_range)",
            "activations": "uint8 dynamic", "quantized_ops": ["MatMul", "Attention"]}


def _agreement(model_dir: Path, staged: Path, min_cosine: float) -> dict[str, Any]:
    """Cosine between the export staged in `staged` (a folder holding `onnx/` and links to the sources) and
    sentence-transformers on real passages and questions, and whether each
    question finds the same nearest passage with both."""
    from index.embedding import Embedder

    data = json.loads(AGREEMENT_DATA.read_text(encoding="utf-8"))
    passages = [p["text"] for p in data["passages"]]
    queries = [q["text"] for q in data["queries"]]
    reference = Embedder(model_dir, threads=os.cpu_count())
    exported = onnx_embedding.OnnxEmbedder(staged, threads=os.cpu_count())
    ref_p, onnx_p = reference.embed_passages(passages), exported.embed_passages(passages)
    ref_q, onnx_q = reference.embed_queries(queries), exported.embed_queries(queries)
    cosines = np.concatenate([(ref_p * onnx_p).sum(1), (ref_q * onnx_q).sum(1)])
    same_nearest = float(np.mean((ref_q @ ref_p.T).argmax(1) == (onnx_q @ onnx_p.T).argmax(1)))
    result = {"passages": len(passages), "queries": len(queries), "cosine_min": round(float(cosines.min()), 5),
              "cosine_mean": round(float(cosines.mean()), 5), "same_nearest_passage": round(same_nearest, 4),
              "data": AGREEMENT_DATA.name}
    if cosines.min() < min_cosine or same_nearest < 1.0:
        raise ExportRefused(f"the ONNX export disagrees with {model_dir}: cosine min {cosines.min():.4f} "
                            f"(needed {min_cosine}), same nearest passage {same_nearest:.2%}")
    return result


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def export(model_dir: Path, force: bool = False, min_cosine: float = MIN_COSINE) -> Path:
    """Write (or confirm) `<model_dir>/onnx/`; returns its path. Raises ExportRefused on disagreement."""
    target = onnx_embedding.export_dir_of(model_dir)
    if not force and onnx_embedding.has_export(model_dir):
        try:
            onnx_embedding.verify_export(model_dir)
            LOG.info("ONNX export up to date: %s", target)
            return target
        except (onnx_embedding.OnnxExportMismatch, onnx_embedding.OnnxExportMissing) as exc:
            LOG.warning("re-exporting: %s", exc)
    pooling, normalize = _pooling(model_dir)
    prompts = json.loads((model_dir / "config_sentence_transformers.json").read_text()).get("prompts") or {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=model_dir) as work:
        work_dir = Path(work)
        arch = _trace(model_dir, work_dir / "traced.onnx", pooling, normalize)
        staging = work_dir / "stage" / onnx_embedding.EXPORT_DIR
        staging.mkdir(parents=True)
        quantization = _optimize_and_quantize(work_dir / "traced.onnx", staging / MODEL_FILE, arch)
        manifest: dict[str, Any] = {
            "format": onnx_embedding.MANIFEST_FORMAT,
            "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "onnx": {"file": MODEL_FILE, "sha256": sha256_of(staging / MODEL_FILE),
                     "bytes": (staging / MODEL_FILE).stat().st_size, "opset": OPSET},
            "source": {"folder": model_dir.name, "sha256": {
                name: sha256_of(model_dir / name) for name in onnx_embedding.SOURCE_FILES
                if (model_dir / name).is_file()}},
            "architecture": arch, "pooling": pooling, "normalize": normalize,
            "dimension": arch["hidden_size"], "max_seq_length": min(512, arch["max_position_embeddings"]),
            "prompts": {k: v for k, v in prompts.items() if v},
            "quantization": quantization,
            "versions": {d: _version(d) for d in ("torch", "transformers", "onnx", "onnxruntime",
                                                   "sentence-transformers", "tokenizers")},
        }
        # the staged export must pass its own load check before the agreement is measured through it
        for name in onnx_embedding.SOURCE_FILES:
            if (model_dir / name).is_file():
                (staging.parent / name).symlink_to(model_dir / name)
        (staging / onnx_embedding.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
        manifest["agreement"] = _agreement(model_dir, staging.parent, min_cosine)
        (staging / onnx_embedding.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    LOG.info("ONNX export written to %s in %.0f s (cosine min %.4f over %d texts)", target,
             time.monotonic() - started, manifest["agreement"]["cosine_min"],
             manifest["agreement"]["passages"] + manifest["agreement"]["queries"])
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="sentence-transformers folder (default: the configured one)")
    parser.add_argument("--force", action="store_true", help="export again even when an up-to-date export exists")
    parser.add_argument("--min-cosine", type=float, default=MIN_COSINE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.model is None:
        from index.settings import VigieSettings

        args.model = VigieSettings().resolved_embedding_model
    model_dir = args.model.expanduser().resolve()
    if not (model_dir / "modules.json").is_file():
        LOG.error("%s is not a sentence-transformers folder (no modules.json)", model_dir)
        return 2
    try:
        export(model_dir, force=args.force, min_cosine=args.min_cosine)
    except ExportRefused as exc:
        LOG.error("export refused: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
